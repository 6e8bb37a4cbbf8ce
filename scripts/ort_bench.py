#!/usr/bin/env python3
"""onnxruntime side of `cli bench`.

Runs the unsplit decoder ONNX (standard layout, see docs/model-format.md) on
the token ids it is given: one prefill of the whole prompt, then greedy
one-token decode steps with the KV cache, exactly what the engine does.
Prints one JSON object on stdout:

    {"prefill_tokens": N, "prefill_s": ..., "decode_tokens": M, "decode_s": ...,
     "tokens": [...], "peak_rss_bytes": ..., "threads": T, "onnxruntime": "1.x"}

Usage: ort_bench.py MODEL.onnx --ids 1,2,3 --decode 32 [--threads 1] [--repeat 3]
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def run_once(sess, meta, ids, decode):
    kv_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    past = {n: np.zeros((1, meta["kv_heads"], 0, meta["head_dim"]), dtype=np.float32) for n in kv_names}
    out_names = [o.name for o in sess.get_outputs()]

    def step(tokens, start):
        n = len(tokens)
        feeds = {
            "input_ids": np.array([tokens], dtype=np.int64),
            "attention_mask": np.ones((1, start + n), dtype=np.int64),
            "position_ids": np.arange(start, start + n, dtype=np.int64)[None, :],
        }
        feeds.update(past)
        res = dict(zip(out_names, sess.run(out_names, feeds)))
        for n_ in kv_names:
            past[n_] = res[n_.replace("past_key_values.", "present.")]
        return res["logits"][0, -1]

    t0 = time.perf_counter()
    logits = step(ids, 0)
    t1 = time.perf_counter()
    tokens = [int(np.argmax(logits))]
    pos = len(ids)
    t2 = time.perf_counter()
    for _ in range(decode - 1):
        logits = step([tokens[-1]], pos)
        pos += 1
        tokens.append(int(np.argmax(logits)))
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--decode", type=int, default=32, help="tokens to generate (first comes from the prefill)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args()
    ids = [int(x) for x in args.ids.split(",") if x]
    if not ids or args.decode < 1:
        sys.exit("need at least one prompt id and --decode >= 1")

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    past_in = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    meta = {"kv_heads": past_in[0].shape[1], "head_dim": past_in[0].shape[3]}

    best_prefill, best_decode, tokens = None, None, None
    for _ in range(args.repeat):
        p, d, tokens = run_once(sess, meta, ids, args.decode)
        best_prefill = p if best_prefill is None else min(best_prefill, p)
        best_decode = d if best_decode is None else min(best_decode, d)

    print(json.dumps({
        "prefill_tokens": len(ids),
        "prefill_s": best_prefill,
        "decode_tokens": args.decode - 1,
        "decode_s": best_decode,
        "tokens": tokens,
        "peak_rss_bytes": peak_rss_bytes(),
        "threads": args.threads,
        "onnxruntime": ort.__version__,
    }))


def peak_rss_bytes():
    """This process's own high-water mark. ru_maxrss is not: Linux carries the
    parent's peak across fork and exec, so a child of the engine's benchmark
    would report the engine's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
