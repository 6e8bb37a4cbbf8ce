#!/usr/bin/env python3
"""Candid argument files for the task manager's `upload_worker_wasm`.

The worker module (20 MB) is larger than one message, so the task manager
takes it in pieces of at most 1 MiB:

    upload_worker_wasm : (record { offset : nat64; bytes : blob }) -> (...)

where `offset` is 0 for the first piece (it starts a new module) and the
size uploaded so far for each next one. This writes one file per piece, in
candid text, for `dfx canister call task_manager upload_worker_wasm
--argument-file FILE` or `icp canister call task_manager upload_worker_wasm
--args-file FILE`, and prints `FILE OFFSET SIZE` per piece
(scripts/upload_worker.sh runs it).

    python3 scripts/worker_wasm_args.py target/canisters/worker.wasm OUT_DIR
"""
import argparse
import hashlib
import os
import sys

# The task manager's limit on one piece (MAX_PIECE in
# canisters/task_manager/impl/src/model/spawn.rs).
MAX_PIECE = 1024 * 1024


def blob_text(data: bytes) -> str:
    """A candid `blob` literal: every byte as a `\\xx` escape."""
    return 'blob "' + "".join(f"\\{b:02x}" for b in data) + '"'


def upload_arg(offset: int, data: bytes) -> str:
    """The candid text of one `upload_worker_wasm` call's argument."""
    if not 0 <= offset < 2**64:
        raise ValueError(f"offset {offset} is not a nat64")
    return f"(record {{ offset = {offset} : nat64; bytes = {blob_text(data)} }})\n"


def pieces(data: bytes, piece_size: int = MAX_PIECE):
    """(offset, bytes) of each piece, in upload order."""
    if not 1 <= piece_size <= MAX_PIECE:
        raise ValueError(f"a piece has 1 to {MAX_PIECE} bytes, asked for {piece_size}")
    if not data:
        raise ValueError("the module is empty")
    return [(o, data[o : o + piece_size]) for o in range(0, len(data), piece_size)]


def write_args(data: bytes, out_dir: str, piece_size: int = MAX_PIECE):
    """Writes `piece-NNNN.did` per piece in `out_dir`; (path, offset, size) of each."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i, (offset, piece) in enumerate(pieces(data, piece_size)):
        path = os.path.join(out_dir, f"piece-{i:04d}.did")
        with open(path, "w", encoding="ascii") as f:
            f.write(upload_arg(offset, piece))
        written.append((path, offset, len(piece)))
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wasm", help="the worker module (target/canisters/worker.wasm)")
    ap.add_argument("out_dir", nargs="?", help="where to write piece-NNNN.did")
    ap.add_argument("--piece-size", type=int, default=MAX_PIECE)
    ap.add_argument("--sha256", action="store_true", help="print the module's SHA-256 and exit")
    args = ap.parse_args(argv)
    with open(args.wasm, "rb") as f:
        data = f.read()
    if args.sha256:
        print(hashlib.sha256(data).hexdigest())
        return 0
    if args.out_dir is None:
        ap.error("the output directory is missing")
    for path, offset, size in write_args(data, args.out_dir, args.piece_size):
        print(path, offset, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
