#!/usr/bin/env python3
"""Reports a wasm module's code section as the IC measures it, and fails
when it is over a limit.

The IC refuses a module whose code section (its contents after the
function count, `MAX_CODE_SECTION_SIZE_IN_BYTES` in dfinity/ic
`rs/embedders/src/wasm_utils/validation.rs`) is over 10 MiB, and one with
more than 50,000 functions (`MAX_FUNCTIONS` in `rs/config/src/embedders.rs`).

    wasm_code_section.py MODULE.wasm [--max-bytes N] [--max-functions N]

Prints `code section: B bytes (X MiB), F functions; margin M bytes` and exits
1 when a limit is exceeded.
"""
import argparse
import gzip
import sys

from wasm_metadata import read_leb128, sections

IC_CODE_SECTION_BYTES = 10 * 1024 * 1024
IC_FUNCTIONS = 50_000


def code_section(wasm):
    """(bytes after the function count, number of functions) of the code
    section; (0, 0) for a module without one."""
    if wasm[:3] == b"\x1f\x8b\x08":
        wasm = gzip.decompress(wasm)
    for sid, _name, start, end in sections(wasm):
        if sid == 10:
            size, body = read_leb128(wasm, start + 1)
            count, after_count = read_leb128(wasm, body)
            return end - after_count, count
    return 0, 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("module")
    p.add_argument("--max-bytes", type=int, default=IC_CODE_SECTION_BYTES)
    p.add_argument("--max-functions", type=int, default=IC_FUNCTIONS)
    args = p.parse_args(argv)
    with open(args.module, "rb") as f:
        size, functions = code_section(f.read())
    print(
        f"{args.module}: code section {size} bytes ({size / 2**20:.2f} MiB), "
        f"{functions} functions; margin {args.max_bytes - size} bytes "
        f"to the limit of {args.max_bytes} ({args.max_bytes / 2**20:.2f} MiB)"
    )
    if size > args.max_bytes:
        print(f"error: the code section is over {args.max_bytes} bytes", file=sys.stderr)
        return 1
    if functions > args.max_functions:
        print(f"error: more than {args.max_functions} functions", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
