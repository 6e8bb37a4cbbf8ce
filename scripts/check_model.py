#!/usr/bin/env python3
"""Checks a built decoder ONNX against a plain-numpy llama forward pass.

    check_model.py SOURCE_DIR --gguf MODEL.gguf   # reference straight from the GGUF
    check_model.py SOURCE_DIR --tiny-seed N       # reference from the tiny weights

The GGUF reference keeps the GGUF's own Q/K row order and applies llama.cpp's
interleaved-pair rotary embedding, so it checks the builder's un-permutation
and its rotate_half RoPE independently. Checked (onnxruntime, float32):

* prefill logits of a prompt vs the numpy reference (max abs diff);
* prefill in two chunks with the KV cache vs one prefill;
* one-token decode steps with the KV cache vs the reference;
* batch 2 (same prompt twice) vs batch 1;
* with --expect TEXT: the greedy chat answer to "What is the capital of
  France?" contains TEXT.

Exits non-zero on a failed check.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_llama_onnx as bl  # noqa: E402
import write_fixtures as wf  # noqa: E402


def rms_norm(x, w, eps):
    ms = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
    return (x / np.sqrt(ms + np.float32(eps))) * w


def rope_half(x, pos, inv_freq):
    """HF rotate_half. x [S, heads, D]."""
    ang = pos[:, None].astype(np.float32) * inv_freq[None, :]        # [S, D/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def rope_interleaved(x, pos, inv_freq):
    """llama.cpp 'normal' rope: pairs (2i, 2i+1). x [S, heads, D]."""
    ang = pos[:, None].astype(np.float32) * inv_freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def reference_logits(cfg, w, ids, rope="half"):
    """Full causal forward pass (no cache) in float32. Returns [S, vocab]."""
    L, NH, KV, D = (cfg[k] for k in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim"))
    eps = cfg["rms_norm_eps"]
    R = NH // KV
    S = len(ids)
    pos = np.arange(S)
    inv_freq = bl.rope_inv_freq(D, cfg["rope_theta"])
    rope_fn = rope_half if rope == "half" else rope_interleaved
    emb = w["model.embed_tokens.weight"]
    x = emb[np.array(ids)].astype(np.float32)
    mask = np.triu(np.ones((S, S), dtype=bool), 1)
    for i in range(L):
        p = "model.layers.%d." % i
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(S, NH, D)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(S, KV, D)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(S, KV, D)
        q, k = rope_fn(q, pos, inv_freq), rope_fn(k, pos, inv_freq)
        out = np.empty((S, NH, D), dtype=np.float32)
        for hd in range(NH):
            g = hd // R
            sc = (q[:, hd, :] @ k[:, g, :].T) / np.float32(np.sqrt(D))
            sc = np.where(mask, -np.inf, sc)
            sc = sc - sc.max(axis=-1, keepdims=True)
            pr = np.exp(sc)
            pr /= pr.sum(axis=-1, keepdims=True)
            out[:, hd, :] = pr @ v[:, g, :]
        x = x + out.reshape(S, NH * D) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gt = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        act = gt / (1.0 + np.exp(-gt)) * up
        x = x + act @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", emb)
    return x @ head.T


def ort_run(sess, ids_batch, past, start):
    """One call; ids_batch [B, n]. Returns (logits, presents dict)."""
    ids = np.array(ids_batch, dtype=np.int64)
    B, n = ids.shape
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones((B, start + n), dtype=np.int64),
        "position_ids": np.tile(np.arange(start, start + n, dtype=np.int64), (B, 1)),
    }
    feeds.update(past)
    names = [o.name for o in sess.get_outputs()]
    res = dict(zip(names, sess.run(names, feeds)))
    pres = {k.replace("present.", "past_key_values."): v for k, v in res.items() if k.startswith("present.")}
    return res["logits"], pres


def empty_past(sess, B):
    return {i.name: np.zeros((B, i.shape[1], 0, i.shape[3]), dtype=np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values.")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source_dir")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf")
    src.add_argument("--tiny-seed", type=int)
    ap.add_argument("--prompt", default="The capital of France is Paris, and the capital of Italy is")
    ap.add_argument("--tol", type=float, default=None, help="max abs logit diff allowed")
    ap.add_argument("--expect", help="text the greedy answer to the France chat question must contain")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    from tokenizers import Tokenizer

    cfg = wf.load_json(os.path.join(args.source_dir, "config.json"))
    if args.gguf:
        _, w, _ = bl.read_gguf(args.gguf, unpermute=False)
        rope = "interleaved"
    else:
        w = bl.tiny_weights(cfg, args.tiny_seed)
        rope = "half"
    tok = Tokenizer.from_file(os.path.join(args.source_dir, "tokenizer.json"))
    ids = tok.encode(args.prompt, add_special_tokens=False).ids
    sess = wf.make_session(os.path.join(args.source_dir, "model.onnx"), args.threads)
    tol = args.tol if args.tol is not None else (2e-3 if args.gguf else 1e-4)
    ok = True

    def report(name, diff, limit):
        nonlocal ok
        good = diff <= limit
        ok &= good
        print("%-34s max abs diff %.3g (limit %.3g) %s" % (name, diff, limit, "ok" if good else "FAIL"))

    t = time.time()
    ref = reference_logits(cfg, w, ids, rope=rope)
    print("numpy reference (%s rope): %d tokens in %.2fs" % (rope, len(ids), time.time() - t))
    full, _ = ort_run(sess, [ids], empty_past(sess, 1), 0)
    scale = float(np.abs(ref).max())
    print("logit magnitude max %.3g" % scale)
    report("prefill vs numpy", float(np.abs(full[0] - ref).max()), tol)
    am_ref, am_ort = ref.argmax(-1), full[0].argmax(-1)
    agree = (am_ref == am_ort).mean()
    print("%-34s %.3f" % ("argmax agreement", agree))

    # chunked prefill + one-token decode with the cache
    cut = len(ids) // 2
    l1, past = ort_run(sess, [ids[:cut]], empty_past(sess, 1), 0)
    l2, past = ort_run(sess, [ids[cut:-2]], past, cut)
    l3, past = ort_run(sess, [ids[-2:-1]], past, len(ids) - 2)
    l4, past = ort_run(sess, [ids[-1:]], past, len(ids) - 1)
    cached = np.concatenate([l1[0], l2[0], l3[0], l4[0]], axis=0)
    report("KV-cache chunks vs one prefill", float(np.abs(cached - full[0]).max()), tol)
    report("KV-cache chunks vs numpy", float(np.abs(cached - ref).max()), tol)

    # batch 2
    lb, _ = ort_run(sess, [ids, ids], empty_past(sess, 2), 0)
    report("batch 2 vs batch 1", float(max(np.abs(lb[0] - full[0]).max(), np.abs(lb[1] - full[0]).max())), tol)

    # left padding: a masked key in front (and position ids that skip it)
    # must give the same logits as no padding
    _, p1 = ort_run(sess, [ids[:-1]], empty_past(sess, 1), 0)
    past_pad = {k: np.concatenate([np.full_like(v[:, :, :1], 7.0), v], axis=2) for k, v in p1.items()}
    feeds = {"input_ids": np.array([ids[-1:]], dtype=np.int64),
             "attention_mask": np.array([[0] + [1] * len(ids)], dtype=np.int64),
             "position_ids": np.array([[len(ids) - 1]], dtype=np.int64)}
    feeds.update(past_pad)
    lp = sess.run(["logits"], feeds)[0]
    report("left-padded past vs no padding", float(np.abs(lp[0, -1] - full[0, -1]).max()), tol)

    if args.expect:
        tok_cfg = wf.load_json(os.path.join(args.source_dir, "tokenizer_config.json"))
        gen = wf.load_json(os.path.join(args.source_dir, "generation_config.json"))
        text = wf.render_chat(tok_cfg["chat_template"],
                              [{"role": "user", "content": "What is the capital of France?"}], tok_cfg)
        cids = tok.encode(text, add_special_tokens=False).ids
        _, greedy = wf.run_case(wf.Decoder(sess), cids, wf.eos_list(gen), 32, False)
        answer = tok.decode(greedy, skip_special_tokens=True)
        good = args.expect in answer
        ok &= good
        print("greedy chat answer: %r %s" % (answer, "ok" if good else "FAIL (expected %r)" % args.expect))

    print("ALL OK" if ok else "CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
