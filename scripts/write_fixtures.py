#!/usr/bin/env python3
"""Writes <model_dir>/fixtures.json: onnxruntime reference outputs of
<model_dir>/source/model.onnx (format: docs/model-format.md, "Reference fixtures").

    write_fixtures.py MODEL_DIR [--threads 1]

Prompts are tokenized with the python `tokenizers` library from
source/tokenizer.json without adding special tokens; chat prompts are rendered
with jinja2 from source/tokenizer_config.json's chat_template
(add_generation_prompt=true). Each case runs a prefill of the whole prompt,
then one-token greedy decode steps with the KV cache, like the engine.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

LOGIT_STEPS = 4
TOP_K = 64
FULL_LOGITS_MAX_VOCAB = 4096

CASES = [
    {"name": "plain-capital", "kind": "plain", "prompt": "The capital of France is", "max_new": 24},
    {"name": "plain-once", "kind": "plain", "prompt": "Once upon a time", "max_new": 24},
    {"name": "plain-hello", "kind": "plain", "prompt": "Hello, my name is", "max_new": 24},
    {"name": "chat-capital", "kind": "chat",
     "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_new": 32},
    {"name": "chat-system", "kind": "chat",
     "messages": [{"role": "system", "content": "You are a concise assistant."},
                  {"role": "user", "content": "Name three colors."}], "max_new": 32},
]


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def render_chat(template, messages, tok_cfg, add_generation_prompt=True):
    # Same environment as transformers' apply_chat_template.
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt,
        bos_token=tok_cfg.get("bos_token") or "", eos_token=tok_cfg.get("eos_token") or "")


def make_session(model_path, threads=1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # Basic optimizations only (constant folding, no op fusions that change
    # the rounding): the fixtures reflect the graph as written.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    return ort.InferenceSession(model_path, sess_options=so, providers=["CPUExecutionProvider"])


class Decoder:
    """Runs the standard-layout decoder with a KV cache (batch 1)."""

    def __init__(self, sess):
        self.sess = sess
        self.kv_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
        shapes = {i.name: i.shape for i in sess.get_inputs()}
        self.kv_heads = {n: shapes[n][1] for n in self.kv_names}
        self.head_dim = {n: shapes[n][3] for n in self.kv_names}
        self.out_names = [o.name for o in sess.get_outputs()]
        self.reset()

    def reset(self):
        self.past = {n: np.zeros((1, self.kv_heads[n], 0, self.head_dim[n]), dtype=np.float32)
                     for n in self.kv_names}
        self.pos = 0

    def step(self, tokens):
        """Feeds `tokens`; returns the logits rows [len(tokens), vocab]."""
        n = len(tokens)
        feeds = {
            "input_ids": np.array([tokens], dtype=np.int64),
            "attention_mask": np.ones((1, self.pos + n), dtype=np.int64),
            "position_ids": np.arange(self.pos, self.pos + n, dtype=np.int64)[None, :],
        }
        feeds.update(self.past)
        res = dict(zip(self.out_names, self.sess.run(self.out_names, feeds)))
        for name in self.kv_names:
            self.past[name] = res[name.replace("past_key_values.", "present.")]
        self.pos += n
        return res["logits"][0]


def f32(x):
    """Shortest decimal that reads back as the same float32."""
    return float(str(np.float32(x)))


def top_k(row, k):
    # Descending by value, ties by ascending id (stable sort on -value).
    order = np.argsort(-row.astype(np.float64), kind="stable")[:k]
    return [[int(i), f32(row[i])] for i in order]


def eos_list(gen_cfg):
    e = gen_cfg.get("eos_token_id")
    if e is None:
        return []
    return [int(x) for x in (e if isinstance(e, list) else [e])]


def run_case(dec, ids, eos, max_new, full_logits):
    dec.reset()
    steps = []
    greedy = []
    done = False
    feed = list(ids)
    k = 0
    while k < LOGIT_STEPS or not done:
        row = dec.step(feed)[-1]
        nxt = int(np.argmax(row))
        if k < LOGIT_STEPS:
            st = {"input_ids": [int(t) for t in feed], "top": top_k(row, TOP_K)}
            if full_logits:
                st["logits"] = [f32(v) for v in row]
            steps.append(st)
        if not done:
            greedy.append(nxt)
            if nxt in eos or len(greedy) >= max_new:
                done = True
        feed = [nxt]
        k += 1
    return steps, greedy


def build_fixtures(model_dir, threads=1, cases=CASES, log=print):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    src = os.path.join(model_dir, "source")
    model_path = os.path.join(src, "model.onnx")
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    tok_cfg = load_json(os.path.join(src, "tokenizer_config.json"))
    gen_cfg = load_json(os.path.join(src, "generation_config.json"))
    cfg = load_json(os.path.join(src, "config.json"))
    eos = eos_list(gen_cfg)
    full = cfg["vocab_size"] <= FULL_LOGITS_MAX_VOCAB
    dec = Decoder(make_session(model_path, threads))

    out_cases = []
    for c in cases:
        case = {"name": c["name"], "kind": c["kind"]}
        if c["kind"] == "plain":
            case["prompt"] = c["prompt"]
            text = c["prompt"]
        else:
            case["messages"] = c["messages"]
            case["add_generation_prompt"] = True
            text = render_chat(tok_cfg["chat_template"], c["messages"], tok_cfg, True)
        ids = tok.encode(text, add_special_tokens=False).ids
        steps, greedy = run_case(dec, ids, eos, c["max_new"], full)
        case.update({
            "text": text,
            "input_ids": ids,
            "steps": steps,
            "greedy_max_new_tokens": c["max_new"],
            "greedy_ids": greedy,
            "greedy_text": tok.decode(greedy, skip_special_tokens=False),
        })
        log("%-14s %3d prompt tokens -> %r" % (c["name"], len(ids), case["greedy_text"]))
        out_cases.append(case)

    return {
        "model": os.path.basename(os.path.normpath(model_dir)),
        "source_sha256": sha,
        "onnxruntime_version": ort.__version__,
        "logit_steps": LOGIT_STEPS,
        "cases": out_cases,
    }


def dump_json(obj, indent=0):
    """JSON with objects indented and lists of scalars / pairs on one line."""
    pad = "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = ["%s%s: %s" % (pad, json.dumps(k, ensure_ascii=False), dump_json(v, indent + 1))
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        items = [pad + dump_json(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def main(argv=None):
    ap = argparse.ArgumentParser(description="write <model_dir>/fixtures.json with onnxruntime")
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="output path (default MODEL_DIR/fixtures.json)")
    args = ap.parse_args(argv)
    fx = build_fixtures(args.model_dir, args.threads)
    out = args.out or os.path.join(args.model_dir, "fixtures.json")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump_json(fx) + "\n")
    os.replace(tmp, out)
    print("wrote %s" % out)


if __name__ == "__main__":
    sys.exit(main())
