#!/usr/bin/env python3
"""Check a cut model against its source with onnxruntime.

Usage:

    verify_stages.py SOURCE_DIR STAGES_DIR [--atol 1e-5] [--prompt-len 7] [--steps 4]

1. Re-checks ``manifest.json``: the tokenizer's and every stage's size and
   sha256, and that the chunks cover each file exactly, in order, each
   ``<= chunk_size <= 1 MiB``, only the last one shorter, with correct hashes;
   that every stage's ONNX inputs/outputs are the ones the manifest lists and
   the layer ranges are contiguous.
2. Runs ``SOURCE_DIR/model.onnx`` and the chained stages on the same tokens:
   a prefill of a short prompt (empty KV cache), then ``--steps`` one-token
   decode steps with the KV cache (the token fed is the source's greedy pick,
   so both chains see identical inputs).  Every step compares the logits and
   every ``present.*`` (max abs diff <= ``--atol``).  The stages are chained
   through their boundary tensor: the output of stage k that is neither
   ``logits`` nor ``present.*`` feeds the input of stage k+1 that is not a
   standard decoder input.

Graph optimisations are off by default (``--ort-opt``) so both sides run the
same kernels in the same order; with fusions on, ORT may fuse across a cut
point differently in the full graph and in the stages.

Exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

PRESENT_RE = re.compile(r"^present\.(\d+)\.(key|value)$")
PAST_RE = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
STANDARD_INPUTS = {"input_ids", "attention_mask", "position_ids"}
MAX_CHUNK_SIZE = 1 << 20


class VerifyError(Exception):
    pass


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_file(path: Path, rec: dict, chunk_size: int | None, what: str) -> bytes:
    if not path.is_file():
        raise VerifyError(f"{what}: {path} missing")
    data = path.read_bytes()
    if len(data) != rec["size"]:
        raise VerifyError(f"{what}: size {len(data)} != manifest {rec['size']}")
    if _sha(data) != rec["sha256"]:
        raise VerifyError(f"{what}: sha256 mismatch")
    if chunk_size is None:
        return data
    chunks = rec.get("chunks")
    if not chunks:
        raise VerifyError(f"{what}: no chunks")
    off = 0
    for i, c in enumerate(chunks):
        if c["offset"] != off:
            raise VerifyError(f"{what}: chunk {i} offset {c['offset']} != {off}")
        if not 0 < c["size"] <= chunk_size:
            raise VerifyError(f"{what}: chunk {i} size {c['size']} out of range")
        if i < len(chunks) - 1 and c["size"] != chunk_size:
            raise VerifyError(f"{what}: chunk {i} is short but not last")
        if _sha(data[off : off + c["size"]]) != c["sha256"]:
            raise VerifyError(f"{what}: chunk {i} sha256 mismatch")
        off += c["size"]
    if off != len(data):
        raise VerifyError(f"{what}: chunks cover {off} of {len(data)} bytes")
    return data


def check_manifest(stages_dir: Path) -> dict:
    manifest = json.loads((stages_dir / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format_version") != 1:
        raise VerifyError(f"format_version {manifest.get('format_version')} != 1")
    chunk_size = manifest["chunk_size"]
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise VerifyError(f"chunk_size {chunk_size} out of range")
    tok = manifest["tokenizer"]
    check_file(stages_dir / tok["file"], tok, None, "tokenizer")
    num_layers = manifest["config"]["num_layers"]
    expect_start = 0
    for k, st in enumerate(manifest["stages"]):
        if st["index"] != k:
            raise VerifyError(f"stage {k}: index {st['index']}")
        if st["layer_start"] != expect_start or st["layer_end"] <= st["layer_start"]:
            raise VerifyError(f"stage {k}: layer range [{st['layer_start']}, {st['layer_end']})")
        expect_start = st["layer_end"]
        data = check_file(stages_dir / st["file"], st, chunk_size, f"stage {k}")
        import onnx

        m = onnx.load_model_from_string(data)
        ins = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
        outs = [o.name for o in m.graph.output]
        if ins != st["inputs"]:
            raise VerifyError(f"stage {k}: graph inputs {ins} != manifest {st['inputs']}")
        if outs != st["outputs"]:
            raise VerifyError(f"stage {k}: graph outputs {outs} != manifest {st['outputs']}")
        for name in ins:
            m_ = PAST_RE.match(name)
            if m_ and not st["layer_start"] <= int(m_.group(1)) < st["layer_end"]:
                raise VerifyError(f"stage {k}: input {name} outside its layers")
        for name in outs:
            m_ = PRESENT_RE.match(name)
            if m_ and not st["layer_start"] <= int(m_.group(1)) < st["layer_end"]:
                raise VerifyError(f"stage {k}: output {name} outside its layers")
        last = k == len(manifest["stages"]) - 1
        if last != ("logits" in outs):
            raise VerifyError(f"stage {k}: logits must be an output of the last stage only")
    if expect_start != num_layers:
        raise VerifyError(f"stages cover layers [0, {expect_start}) of {num_layers}")
    return manifest


_NP = {1: np.float32, 10: np.float16, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}


def _session(path_or_bytes, opt: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt]
    so.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def _input_specs(sess) -> dict:
    """name -> (numpy dtype, dims) for the session's inputs."""
    out = {}
    for i in sess.get_inputs():
        t = i.type  # e.g. 'tensor(float)'
        dt = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(bool)": np.bool_, "tensor(double)": np.float64}[t]
        out[i.name] = (dt, list(i.shape))
    return out


def run_chain(sessions, feeds_base: dict, pasts: dict):
    """Runs the stages in order; returns (logits, presents)."""
    presents = {}
    boundary = None
    logits = None
    for k, sess in enumerate(sessions):
        feeds = {}
        for i in sess.get_inputs():
            name = i.name
            if name in feeds_base:
                feeds[name] = feeds_base[name]
            elif PAST_RE.match(name):
                feeds[name] = pasts[name]
            else:
                if boundary is None:
                    raise VerifyError(f"stage {k}: nothing to feed to input {name}")
                feeds[name] = boundary
        names = [o.name for o in sess.get_outputs()]
        vals = sess.run(names, feeds)
        boundary = None
        for n, v in zip(names, vals):
            if n == "logits":
                logits = v
            elif PRESENT_RE.match(n):
                presents[n] = v
            else:
                if boundary is not None:
                    raise VerifyError(f"stage {k}: more than one boundary output")
                boundary = v
    return logits, presents


def verify(source: Path, stages_dir: Path, atol: float = 1e-5, prompt_len: int = 7,
           steps: int = 4, batch: int = 1, opt: str = "disable", quiet: bool = False) -> float:
    """Returns the largest abs difference seen; raises VerifyError on failure."""
    manifest = check_manifest(stages_dir)
    say = (lambda *_: None) if quiet else (lambda s: print(s, flush=True))
    say(f"manifest OK: {len(manifest['stages'])} stage(s), hashes and chunks match")

    full = _session(str(source / "model.onnx"), opt)
    stages = [_session(str(stages_dir / st["file"]), opt) for st in manifest["stages"]]
    specs = _input_specs(full)
    cfg = manifest["config"]
    vocab = None
    for o in full.get_outputs():
        if o.name == "logits" and isinstance(o.shape[-1], int):
            vocab = o.shape[-1]
    vocab = vocab or cfg.get("vocab_size") or 100

    rng = np.random.default_rng(1234)
    prompt = rng.integers(1, vocab, size=(batch, prompt_len))
    past_len = 0
    pasts_full, pasts_chain = {}, {}
    for name, (dt, dims) in specs.items():
        if PAST_RE.match(name):
            kv = dims[1] if isinstance(dims[1], int) else cfg["num_kv_heads"]
            hd = dims[3] if isinstance(dims[3], int) else cfg["head_dim"]
            pasts_full[name] = np.zeros((batch, kv, 0, hd), dtype=dt)
    pasts_chain = dict(pasts_full)

    worst = 0.0
    ids = prompt
    for step in range(steps + 1):
        n_new = ids.shape[1]
        total = past_len + n_new
        base = {}
        if "input_ids" in specs:
            base["input_ids"] = ids.astype(specs["input_ids"][0])
        am_dt = specs.get("attention_mask", (np.int64,))[0]
        base["attention_mask"] = np.ones((batch, total), dtype=am_dt)
        pid_dt = specs.get("position_ids", (np.int64,))[0]
        base["position_ids"] = np.tile(np.arange(past_len, total, dtype=pid_dt), (batch, 1))
        feeds_full = {k: v for k, v in base.items() if k in specs}
        feeds_full.update(pasts_full)
        out_names = [o.name for o in full.get_outputs()]
        vals = dict(zip(out_names, full.run(out_names, feeds_full)))
        logits_c, presents_c = run_chain(stages, base, pasts_chain)

        def cmp(what, x, y):
            nonlocal worst
            if x is None or y is None:
                raise VerifyError(f"step {step}: {what} missing")
            if x.shape != y.shape:
                raise VerifyError(f"step {step}: {what} shape {y.shape} != {x.shape}")
            d = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
            worst = max(worst, d)
            if not d <= atol:
                raise VerifyError(f"step {step}: {what} differs by {d:g} > {atol:g}")
            return d

        d_logits = cmp("logits", vals["logits"], logits_c)
        d_pres = 0.0
        for name in out_names:
            if PRESENT_RE.match(name):
                d_pres = max(d_pres, cmp(name, vals[name], presents_c.get(name)))
        if set(presents_c) != {n for n in out_names if PRESENT_RE.match(n)}:
            raise VerifyError(f"step {step}: stages produce presents {sorted(presents_c)}")
        kind = "prefill" if step == 0 else "decode"
        say(f"step {step} ({kind}, {n_new} token(s), past {past_len}): "
            f"max |dlogits| {d_logits:.3g}, max |dpresent| {d_pres:.3g}")
        nxt = np.argmax(vals["logits"][:, -1, :], axis=-1).reshape(batch, 1)
        for name in out_names:
            m = PRESENT_RE.match(name)
            if m:
                past = f"past_key_values.{m.group(1)}.{m.group(2)}"
                pasts_full[past] = vals[name]
                pasts_chain[past] = presents_c[name]
        past_len = total
        ids = nxt
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path)
    p.add_argument("stages", type=Path)
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--prompt-len", type=int, default=7)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ort-opt", choices=["disable", "basic", "extended", "all"], default="disable")
    args = p.parse_args(argv)
    try:
        worst = verify(args.source, args.stages, args.atol, args.prompt_len, args.steps,
                       args.batch, args.ort_opt)
    except VerifyError as e:
        print(f"verify_stages: FAIL: {e}", file=sys.stderr)
        return 1
    print(f"verify_stages: OK (max abs diff {worst:.3g} <= {args.atol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
