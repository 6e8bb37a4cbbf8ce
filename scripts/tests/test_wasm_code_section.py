"""scripts/wasm_code_section.py: measures the code section as the IC does
(after the function count) and fails over the limit."""
import gzip
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import wasm_code_section as wcs  # noqa: E402
import wasm_metadata as wm  # noqa: E402


def module(functions, body_bytes):
    """`functions` functions of type [] -> [], each a body of `body_bytes`
    bytes (no locals, nops, end)."""
    body = b"\x00" + b"\x01" * (body_bytes - 2) + b"\x0b"
    entry = wm.leb128(len(body)) + body
    code = wm.leb128(functions) + entry * functions
    funcs = wm.leb128(functions) + b"\x00" * functions
    return (
        b"\0asm\x01\0\0\0"
        + b"\x01\x04\x01\x60\x00\x00"
        + b"\x03" + wm.leb128(len(funcs)) + funcs
        + b"\x0a" + wm.leb128(len(code)) + code
    )


def test_measures_contents_after_the_function_count():
    wasm = module(300, 200)
    # Each entry: a 2-byte size (200 > 127) and its 200-byte body.
    assert wcs.code_section(wasm) == (300 * 202, 300)
    assert wcs.code_section(gzip.compress(wasm)) == (300 * 202, 300)
    assert wcs.code_section(b"\0asm\x01\0\0\0") == (0, 0)


def test_fails_over_the_limit(tmp_path):
    path = tmp_path / "m.wasm"
    path.write_bytes(module(10, 100))
    assert wcs.main([str(path), "--max-bytes", "1010"]) == 0
    assert wcs.main([str(path), "--max-bytes", "1009"]) == 1
    assert wcs.main([str(path), "--max-functions", "9"]) == 1
