"""scripts/wasm_metadata.py: the sections it writes are valid wasm custom
sections that read back, and a second embedding replaces the first."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import wasm_metadata as wm  # noqa: E402

def module():
    export_name = b"canister_query get"
    export = b"\x01" + wm.leb128(len(export_name)) + export_name + b"\x00\x00"
    code_body = b"\x00\x0b"  # no locals, end
    code = b"\x01" + wm.leb128(len(code_body)) + code_body
    return (
        b"\0asm\x01\0\0\0"
        + b"\x01\x04\x01\x60\x00\x00"
        + b"\x03\x02\x01\x00"
        + b"\x07" + wm.leb128(len(export)) + export
        + b"\x0a" + wm.leb128(len(code)) + code
    )


def test_embeds_reads_back_and_replaces():
    did = b"service : { get : () -> (nat64) query }"
    out = wm.embed(module(), [("icp:public candid:service", did)])
    assert wm.read_section(out, "icp:public candid:service") == did
    # Every section still parses and the code is untouched.
    ids = [sid for sid, *_ in wm.sections(out)]
    assert ids == [1, 3, 7, 10, 0]
    again = wm.embed(out, [("icp:public candid:service", b"service : {}")])
    assert wm.read_section(again, "icp:public candid:service") == b"service : {}"
    assert [n for _, n, *_ in wm.sections(again)].count("icp:public candid:service") == 1


def test_large_payloads_use_multibyte_lengths():
    payload = bytes(range(256)) * 1000
    out = wm.embed(module(), [("icp:private blob", payload)])
    assert wm.read_section(out, "icp:private blob") == payload


def test_refuses_what_is_not_wasm(tmp_path):
    with pytest.raises(ValueError):
        list(wm.sections(b"not wasm at all"))
    truncated = module()[:-3]
    with pytest.raises(ValueError):
        list(wm.sections(truncated))
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"nope")
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "wasm_metadata.py"),
                        str(bad), str(tmp_path / "out.wasm")], capture_output=True, text=True)
    assert r.returncode != 0 and "not a wasm module" in r.stderr
