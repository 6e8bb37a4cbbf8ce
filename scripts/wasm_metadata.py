#!/usr/bin/env python3
"""Embeds metadata in a canister's wasm as the IC expects it: a custom
section named `icp:public <name>` (or `icp:private <name>`) holding the
bytes, e.g. `icp:public candid:service` with the .did, which `dfx` and
agents read with `read_state` / `canister metadata`.

    wasm_metadata.py IN.wasm OUT.wasm --public candid:service=path/to.did

An existing section of the same name is replaced.
"""
import argparse
import sys


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_leb128(data, i):
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def sections(wasm):
    """Yields (id, name or None, start, end) of every section."""
    if wasm[:4] != b"\0asm":
        raise ValueError("not a wasm module (no \\0asm magic)")
    i = 8
    while i < len(wasm):
        start = i
        sid = wasm[i]
        size, body = read_leb128(wasm, i + 1)
        end = body + size
        if end > len(wasm):
            raise ValueError(f"section at byte {start} runs past the end of the module")
        name = None
        if sid == 0:
            n, j = read_leb128(wasm, body)
            name = wasm[j:j + n].decode("utf-8")
        yield sid, name, start, end
        i = end


def custom_section(name, payload):
    name_bytes = name.encode("utf-8")
    body = leb128(len(name_bytes)) + name_bytes + payload
    return b"\0" + leb128(len(body)) + body


def embed(wasm, entries):
    """entries: list of (section name, payload bytes)."""
    names = {name for name, _ in entries}
    kept = bytearray(wasm[:8])
    for _sid, name, start, end in sections(wasm):
        if name not in names:
            kept += wasm[start:end]
    for name, payload in entries:
        kept += custom_section(name, payload)
    return bytes(kept)


def read_section(wasm, wanted):
    for _sid, name, start, end in sections(wasm):
        if name == wanted:
            _size, body = read_leb128(wasm, start + 1)
            n, j = read_leb128(wasm, body)
            return wasm[j + n:end]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--public", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--private", action="append", default=[], metavar="NAME=FILE")
    args = ap.parse_args()
    entries = []
    for visibility, items in (("public", args.public), ("private", args.private)):
        for item in items:
            name, _, path = item.partition("=")
            if not name or not path:
                ap.error(f"expected NAME=FILE, found {item!r}")
            with open(path, "rb") as f:
                entries.append((f"icp:{visibility} {name}", f.read()))
    with open(args.input, "rb") as f:
        wasm = f.read()
    try:
        out = embed(wasm, entries)
    except ValueError as e:
        sys.exit(f"{args.input}: {e}")
    with open(args.output, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
