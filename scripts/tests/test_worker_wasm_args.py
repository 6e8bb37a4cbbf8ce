"""scripts/worker_wasm_args.py: the candid text it writes for
`upload_worker_wasm` parses back (by the candid text grammar, below) to the
offsets and bytes of the module, piece by piece."""
import os
import random
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, ".."))
import worker_wasm_args as wa  # noqa: E402


# --- a parser for the candid text values used here ---------------------------
# (spec: https://github.com/dfinity/candid/blob/master/spec/Candid.md, "Values")

SIMPLE_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'"}


class Parser:
    def __init__(self, text):
        self.s = text
        self.i = 0

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def expect(self, token):
        self.ws()
        assert self.s.startswith(token, self.i), f"expected {token!r} at {self.i}: {self.s[self.i:self.i + 30]!r}"
        self.i += len(token)

    def peek(self, token):
        self.ws()
        return self.s.startswith(token, self.i)

    def ident(self):
        self.ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        assert m, f"expected a name at {self.i}"
        self.i = m.end()
        return m.group()

    def text_bytes(self):
        """A text literal's bytes (a blob's contents)."""
        self.expect('"')
        out = bytearray()
        while True:
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return bytes(out)
            if c != "\\":
                out += c.encode("utf-8")
                self.i += 1
                continue
            e = self.s[self.i + 1]
            if e in SIMPLE_ESCAPES:
                out += SIMPLE_ESCAPES[e]
                self.i += 2
            elif e == "u":
                m = re.compile(r"\\u\{([0-9a-fA-F_]+)\}").match(self.s, self.i)
                assert m, f"bad \\u escape at {self.i}"
                out += chr(int(m.group(1).replace("_", ""), 16)).encode("utf-8")
                self.i = m.end()
            else:
                h = self.s[self.i + 1 : self.i + 3]
                assert re.fullmatch(r"[0-9a-fA-F]{2}", h), f"bad escape {h!r} at {self.i}"
                out.append(int(h, 16))
                self.i += 3

    def value(self):
        self.ws()
        if self.peek("record"):
            self.expect("record")
            self.expect("{")
            fields = {}
            while not self.peek("}"):
                name = self.ident()
                self.expect("=")
                assert name not in fields, f"field {name} twice"
                fields[name] = self.value()
                if not self.peek(";"):
                    break
                self.expect(";")
            self.expect("}")
            return fields
        if self.peek("blob"):
            self.expect("blob")
            return self.text_bytes()
        m = re.compile(r"[0-9][0-9_]*").match(self.s, self.i)
        assert m, f"expected a value at {self.i}: {self.s[self.i:self.i + 30]!r}"
        self.i = m.end()
        n = int(m.group().replace("_", ""))
        if self.peek(":"):
            self.expect(":")
            assert self.ident() == "nat64"
            assert n < 2**64
        return n

    def args(self):
        self.expect("(")
        values = []
        while not self.peek(")"):
            values.append(self.value())
            if not self.peek(","):
                break
            self.expect(",")
        self.expect(")")
        self.ws()
        assert self.i == len(self.s), f"trailing text at {self.i}"
        return values


def parse_upload_arg(text):
    """(offset, bytes) of an `upload_worker_wasm` argument in candid text."""
    (record,) = Parser(text).args()
    assert set(record) == {"offset", "bytes"}, record
    assert isinstance(record["offset"], int) and isinstance(record["bytes"], bytes)
    return record["offset"], record["bytes"]


# --- the parser itself ----------------------------------------------------------


def test_parser_reads_the_specs_escapes():
    text = r'(record { bytes = blob "a\00\ff\n\t\\\"\u{e9}"; offset = 1_024 : nat64 })'
    assert parse_upload_arg(text) == (1024, b"a\x00\xff\n\t\\\"" + "é".encode("utf-8"))
    with pytest.raises(AssertionError):
        parse_upload_arg(r'(record { offset = 0 : nat64; bytes = blob "\zz" })')
    with pytest.raises(AssertionError):
        parse_upload_arg('(record { offset = 0 : nat64; bytes = blob "" }) extra')


# --- the helper -------------------------------------------------------------------


def test_every_byte_value_round_trips():
    data = bytes(range(256)) * 3
    text = wa.upload_arg(7, data)
    assert text.isascii()
    assert parse_upload_arg(text) == (7, data)


def test_pieces_tile_the_module_and_each_file_round_trips(tmp_path):
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(2 * 1000 + 333))
    written = wa.write_args(data, str(tmp_path), piece_size=1000)
    assert [(os.path.basename(p), o, n) for p, o, n in written] == [
        ("piece-0000.did", 0, 1000),
        ("piece-0001.did", 1000, 1000),
        ("piece-0002.did", 2000, 333),
    ]
    again = b""
    for path, offset, size in written:
        with open(path, encoding="ascii") as f:
            o, piece = parse_upload_arg(f.read())
        assert (o, len(piece)) == (offset, size)
        assert o == len(again), "each piece continues at the size uploaded so far"
        again += piece
    assert again == data
    # File names sort in upload order.
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(p) for p, _, _ in written]


def test_full_size_pieces_are_at_most_one_mib():
    data = os.urandom(wa.MAX_PIECE + 10)
    (first, second) = wa.pieces(data)
    assert first == (0, data[: wa.MAX_PIECE]) and second == (wa.MAX_PIECE, data[wa.MAX_PIECE :])
    assert parse_upload_arg(wa.upload_arg(*first)) == first


def test_refuses_what_the_task_manager_would():
    with pytest.raises(ValueError):
        wa.pieces(b"")
    with pytest.raises(ValueError):
        wa.pieces(b"x", piece_size=wa.MAX_PIECE + 1)
    with pytest.raises(ValueError):
        wa.upload_arg(-1, b"x")


def test_command_line(tmp_path):
    wasm = tmp_path / "worker.wasm"
    data = b"\0asm\1\0\0\0" + bytes(range(256)) * 10
    wasm.write_bytes(data)
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "..", "worker_wasm_args.py"), str(wasm), str(tmp_path / "args"),
         "--piece-size", "1024"],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    lines = [line.split() for line in out if line]
    assert [(int(o), int(n)) for _, o, n in lines] == [(0, 1024), (1024, 1024), (2048, 520)]
    assert b"".join(parse_upload_arg(open(p, encoding="ascii").read())[1] for p, _, _ in lines) == data

