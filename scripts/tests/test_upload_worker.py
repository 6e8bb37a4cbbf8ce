"""scripts/upload_worker.sh against a stand-in for dfx / icp that keeps
the module the way the task manager does: every piece is sent in order with
the right tool arguments, and the SHA-256 check passes on the whole module."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, ".."))
import worker_wasm_args as wa  # noqa: E402


FAKE_TOOL = r'''#!PYTHON
"""Stands in for dfx / icp: logs its arguments and keeps the module the
way the task manager does (a piece continues at the size so far; offset 0
starts over)."""
import hashlib, json, os, re, sys
state = os.environ["FAKE_STATE"]
with open(state + ".log", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
flag = "--argument-file" if "--argument-file" in sys.argv else "--args-file"
text = open(sys.argv[sys.argv.index(flag) + 1]).read()
m = re.fullmatch(r'\(record \{ offset = (\d+) : nat64; bytes = blob "((?:\\[0-9a-f]{2})*)" \}\)\n', text)
offset, data = int(m.group(1)), bytes.fromhex(m.group(2).replace("\\", ""))
held = open(state, "rb").read() if os.path.exists(state) and offset else b""
if offset != len(held):
    print('(variant { Err = variant { InvalidRequest = record { reason = "offset" } } })')
    sys.exit(0)
held += data
open(state, "wb").write(held)
print('(variant { Ok = record { sha256 = "%s"; size = %d : nat64 } })' % (hashlib.sha256(held).hexdigest(), len(held)))
'''


def run_upload(tmp_path, tool, args, data=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / tool
    fake.write_text(FAKE_TOOL.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    wasm = tmp_path / "worker.wasm"
    if data is None:
        data = os.urandom(2 * wa.MAX_PIECE + 12345)
    wasm.write_bytes(data)
    state = tmp_path / "held"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_STATE=str(state))
    script = os.path.join(HERE, "..", "upload_worker.sh")
    out = subprocess.run(["bash", script, "--wasm", str(wasm), *args], env=env,
                         capture_output=True, text=True)
    log = tmp_path / "held.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    held = state.read_bytes() if state.exists() else b""
    return out, data, held, calls


def test_upload_worker_with_dfx(tmp_path):
    out, data, held, calls = run_upload(tmp_path, "dfx", ["--network", "ic"])
    assert out.returncode == 0, out.stderr
    assert held == data
    assert "piece 3/3" in out.stdout and "uploaded" in out.stdout
    assert len(calls) == 3
    for argv in calls:
        assert argv[:7] == [
            "canister", "call", "--network", "ic", "task_manager", "upload_worker_wasm", "--argument-file"]


def test_upload_worker_with_icp(tmp_path):
    out, data, held, calls = run_upload(tmp_path, "icp", ["--icp", "--environment", "staging"])
    assert out.returncode == 0, out.stderr
    assert held == data
    assert calls[0][:7] == [
        "canister", "call", "--environment", "staging", "task_manager", "upload_worker_wasm", "--args-file"]


def test_upload_worker_refuses_mixed_flags(tmp_path):
    out, _, _, _ = run_upload(tmp_path, "dfx", ["--environment", "staging"])
    assert out.returncode == 2 and "--environment is for --icp" in out.stderr


def test_upload_worker_fails_when_the_task_manager_refuses(tmp_path):
    # A task manager that refuses (here: the caller is not a controller).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dfx"
    fake.write_text("#!/bin/sh\necho '(variant { Err = variant { NotController } })'\n")
    fake.chmod(0o755)
    wasm = tmp_path / "worker.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    out = subprocess.run(["bash", os.path.join(HERE, "..", "upload_worker.sh"), "--wasm", str(wasm)],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert "NotController" in out.stderr and "piece 1 failed" in out.stderr


def test_a_plain_module_is_sent_gzip_compressed(tmp_path):
    import gzip
    data = b"\0asm\x01\0\0\0" + bytes(range(256)) * 20_000  # 5 MB, compressible
    out, data, held, calls = run_upload(tmp_path, "dfx", [], data=data)
    assert out.returncode == 0, out.stderr
    assert held[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(held) == data
    assert len(calls) == 1 and "gzip-compressed" in out.stdout
