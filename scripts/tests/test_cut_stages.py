"""Tests of scripts/cut_stages.py and scripts/verify_stages.py on toy decoders.

Two small decoders are built in-process with random weights, from plain ONNX
ops and with opaque node names (the cutter must not rely on names):

* a llama-like one: RMSNorm, rotary attention with GQA and KV cache, SwiGLU
  MLP, causal mask built from Shape(input_ids) and attention_mask, tied or
  untied embeddings (opset 18);
* a GPT-2-like one: learned position embeddings (Gather on a wpe table with
  position_ids), LayerNorm and tanh-GELU as plain ops, fused qkv Split, mask
  built from Shape(inputs_embeds) (opset 13).

Runs with pytest or `python -m unittest`.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cut_stages  # noqa: E402
import verify_stages  # noqa: E402


class _B:
    """Tiny graph builder with opaque tensor / node names."""

    def __init__(self, opset: int, seed: int):
        self.opset = opset
        self.nodes = []
        self.inits = []
        self.n = 0
        self.rng = np.random.default_rng(seed)

    def name(self, prefix="t"):
        self.n += 1
        return f"{prefix}{self.n}"

    def init(self, arr, name=None):
        name = name or self.name("w")
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def rand(self, *shape, std=0.2, name=None):
        return self.init(self.rng.normal(0, std, size=shape).astype(np.float32), name)

    def i64(self, vals):
        return self.init(np.array(vals, dtype=np.int64))

    def f32(self, val):
        return self.init(np.array(val, dtype=np.float32))

    def op(self, op_type, inputs, out=None, n_out=1, **attrs):
        outs = [out] if out else [self.name() for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n"), **attrs))
        return outs[0] if n_out == 1 else outs

    def unsqueeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.i64(axes)])
        return self.op("Unsqueeze", [x], axes=axes)

    def reduce_mean(self, x):
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.i64([-1])], keepdims=1)
        return self.op("ReduceMean", [x], axes=[-1], keepdims=1)

    def heads(self, x, n, d):
        r = self.op("Reshape", [x, self.i64([0, 0, n, d])])
        return self.op("Transpose", [r], perm=[0, 2, 1, 3])

    def mask(self, seq_shape_src, attention_mask, past_src=None):
        """Additive [B,1,S,T] bias: causal w.r.t. the past, and padding.

        The past length is T - S, or read from Shape(past_src)[2] (as optimum
        exports do with past_key_values.0.key)."""
        s = self.op("Gather", [self.op("Shape", [seq_shape_src]), self.i64(1)], axis=0)
        if past_src is None:
            t = self.op("Gather", [self.op("Shape", [attention_mask]), self.i64(1)], axis=0)
            p = self.op("Sub", [t, s])
        else:
            p = self.op("Gather", [self.op("Shape", [past_src]), self.i64(2)], axis=0)
            t = self.op("Add", [p, s])
        one, zero = self.i64(1), self.i64(0)
        q_pos = self.op("Range", [p, t, one])
        k_pos = self.op("Range", [zero, t, one])
        causal = self.op("LessOrEqual", [self.unsqueeze(k_pos, [0]), self.unsqueeze(q_pos, [1])])
        pad = self.unsqueeze(self.op("Cast", [attention_mask], to=TensorProto.BOOL), [1, 2])
        allowed = self.op("And", [causal, pad])
        return self.op("Where", [allowed, self.f32(0.0), self.f32(-1e9)])

    def attention(self, q, k_all, v_all, mask, groups, n_heads, d, hidden):
        if groups > 1:
            reps = []
            for x in (k_all, v_all):
                u = self.unsqueeze(x, [2])
                c = self.op("Concat", [u] * groups, axis=2)
                reps.append(self.op("Reshape", [c, self.i64([0, n_heads, -1, d])]))
            k_all, v_all = reps
        kt = self.op("Transpose", [k_all], perm=[0, 1, 3, 2])
        s = self.op("Mul", [self.op("MatMul", [q, kt]), self.f32(1.0 / math.sqrt(d))])
        p = self.op("Softmax", [self.op("Add", [s, mask])], axis=-1)
        o = self.op("Transpose", [self.op("MatMul", [p, v_all])], perm=[0, 2, 1, 3])
        return self.op("Reshape", [o, self.i64([0, 0, hidden])])

    def model(self, inputs, outputs, out_order):
        graph = helper.make_graph(self.nodes, "toy", inputs, [outputs[o] for o in out_order],
                                  initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="toy")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def _io(num_layers, kv, d, vocab):
    F, I = TensorProto.FLOAT, TensorProto.INT64
    inputs = [
        helper.make_tensor_value_info("input_ids", I, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", I, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", I, ["batch_size", "sequence_length"]),
    ]
    outputs = {"logits": helper.make_tensor_value_info(
        "logits", F, ["batch_size", "sequence_length", vocab])}
    order = ["logits"]
    for l in range(num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{l}.{kind}", F, ["batch_size", kv, "past_sequence_length", d]))
            outputs[f"present.{l}.{kind}"] = helper.make_tensor_value_info(
                f"present.{l}.{kind}", F, ["batch_size", kv, "total_sequence_length", d])
            order.append(f"present.{l}.{kind}")
    return inputs, outputs, order


def build_llama(num_layers=4, hidden=32, heads=4, kv_heads=2, inter=48, vocab=97, tied=True,
                seed=0, past_len_from_layer0=False):
    b = _B(18, seed)
    d = hidden // heads
    inputs, outputs, order = _io(num_layers, kv_heads, d, vocab)
    emb = b.rand(vocab, hidden, std=1.0)

    def rms(x):
        ms = b.reduce_mean(b.op("Mul", [x, x]))
        r = b.op("Sqrt", [b.op("Add", [ms, b.f32(1e-5)])])
        w = b.init((1.0 + 0.1 * b.rng.normal(size=hidden)).astype(np.float32))
        return b.op("Mul", [b.op("Div", [x, r]), w])

    def rope(x, cos, sin):
        x1, x2 = b.op("Split", [x, b.i64([d // 2, d // 2])], n_out=2, axis=-1)
        rot = b.op("Concat", [b.op("Neg", [x2]), x1], axis=-1)
        return b.op("Add", [b.op("Mul", [x, cos]), b.op("Mul", [rot, sin])])

    h = b.op("Gather", [emb, "input_ids"], axis=0)
    inv = (1.0 / 10000 ** (np.arange(0, d, 2) / d)).astype(np.float32)
    pos = b.unsqueeze(b.op("Cast", ["position_ids"], to=TensorProto.FLOAT), [-1])
    freqs = b.op("Mul", [pos, b.init(inv)])
    e = b.op("Concat", [freqs, freqs], axis=-1)
    cos = b.unsqueeze(b.op("Cos", [e]), [1])
    sin = b.unsqueeze(b.op("Sin", [e]), [1])
    mask = b.mask("input_ids", "attention_mask",
                  "past_key_values.0.key" if past_len_from_layer0 else None)
    for l in range(num_layers):
        x = rms(h)
        q = rope(b.heads(b.op("MatMul", [x, b.rand(hidden, heads * d)]), heads, d), cos, sin)
        k = rope(b.heads(b.op("MatMul", [x, b.rand(hidden, kv_heads * d)]), kv_heads, d), cos, sin)
        v = b.heads(b.op("MatMul", [x, b.rand(hidden, kv_heads * d)]), kv_heads, d)
        k_all = b.op("Concat", [f"past_key_values.{l}.key", k], out=f"present.{l}.key", axis=2)
        v_all = b.op("Concat", [f"past_key_values.{l}.value", v], out=f"present.{l}.value", axis=2)
        att = b.attention(q, k_all, v_all, mask, heads // kv_heads, heads, d, hidden)
        h = b.op("Add", [h, b.op("MatMul", [att, b.rand(hidden, hidden)])])
        x2 = rms(h)
        g = b.op("MatMul", [x2, b.rand(hidden, inter)])
        u = b.op("MatMul", [x2, b.rand(hidden, inter)])
        act = b.op("Mul", [b.op("Mul", [g, b.op("Sigmoid", [g])]), u])
        h = b.op("Add", [h, b.op("MatMul", [act, b.rand(inter, hidden)])])
    hf = rms(h)
    head = b.op("Transpose", [emb], perm=[1, 0]) if tied else b.rand(hidden, vocab, name="lm_head")
    b.op("MatMul", [hf, head], out="logits")
    cfg = {
        "model_type": "llama", "num_hidden_layers": num_layers, "hidden_size": hidden,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "intermediate_size": inter, "vocab_size": vocab, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
        "bos_token_id": 1, "eos_token_id": 2,
    }
    return b.model(inputs, outputs, order), cfg


def build_gpt2(num_layers=3, hidden=32, heads=4, vocab=97, max_pos=64, seed=1):
    b = _B(13, seed)
    d = hidden // heads
    inputs, outputs, order = _io(num_layers, heads, d, vocab)
    wte = b.rand(vocab, hidden, std=1.0)
    wpe = b.rand(max_pos, hidden, std=0.5)

    def ln(x):
        c = b.op("Sub", [x, b.reduce_mean(x)])
        var = b.reduce_mean(b.op("Mul", [c, c]))
        r = b.op("Sqrt", [b.op("Add", [var, b.f32(1e-5)])])
        g = b.init((1.0 + 0.1 * b.rng.normal(size=hidden)).astype(np.float32))
        return b.op("Add", [b.op("Mul", [b.op("Div", [c, r]), g]), b.rand(hidden, std=0.05)])

    def linear(x, n_in, n_out):
        return b.op("Add", [b.op("MatMul", [x, b.rand(n_in, n_out)]), b.rand(n_out, std=0.05)])

    tok = b.op("Gather", [wte, "input_ids"], axis=0)
    h = b.op("Add", [tok, b.op("Gather", [wpe, "position_ids"], axis=0)])
    mask = b.mask(tok, "attention_mask")  # reads Shape(inputs_embeds)
    for l in range(num_layers):
        qkv = linear(ln(h), hidden, 3 * hidden)
        q, k, v = (b.heads(t, heads, d) for t in
                   b.op("Split", [qkv, b.i64([hidden] * 3)], n_out=3, axis=-1))
        k_all = b.op("Concat", [f"past_key_values.{l}.key", k], out=f"present.{l}.key", axis=2)
        v_all = b.op("Concat", [f"past_key_values.{l}.value", v], out=f"present.{l}.value", axis=2)
        att = b.attention(q, k_all, v_all, mask, 1, heads, d, hidden)
        # like HF's view(input_shape + (-1,)): reads Shape(input_ids) in every layer
        att = b.op("Reshape", [att, b.op("Concat", [b.op("Shape", ["input_ids"]),
                                                    b.i64([-1])], axis=0)])
        h = b.op("Add", [h, linear(att, hidden, hidden)])
        f = linear(ln(h), hidden, 4 * hidden)
        inner = b.op("Mul", [b.op("Add", [f, b.op("Mul", [b.f32(0.044715), b.op(
            "Mul", [f, b.op("Mul", [f, f])])])]), b.f32(math.sqrt(2 / math.pi))])
        gelu = b.op("Mul", [b.op("Mul", [f, b.f32(0.5)]),
                            b.op("Add", [b.f32(1.0), b.op("Tanh", [inner])])])
        h = b.op("Add", [h, linear(gelu, 4 * hidden, hidden)])
    b.op("MatMul", [ln(h), b.op("Transpose", [wte], perm=[1, 0])], out="logits")
    cfg = {
        "model_type": "gpt2", "n_layer": num_layers, "n_embd": hidden, "n_head": heads,
        "n_inner": None, "vocab_size": vocab, "n_positions": max_pos,
        "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 0,
    }
    return b.model(inputs, outputs, order), cfg


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}"


def write_source(root: Path, model: onnx.ModelProto, cfg: dict, gpt2: bool = False) -> Path:
    src = root / "toy" / "source"
    src.mkdir(parents=True)
    onnx.save(model, str(src / "model.onnx"))
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for i in range(len(SPECIALS), cfg["vocab_size"]):
        vocab[f"tok{i}"] = i
    tokenizer = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(SPECIALS)],
        "model": {"type": "BPE", "vocab": vocab, "merges": []},
    }
    (src / "tokenizer.json").write_text(json.dumps(tokenizer))
    if gpt2:
        tok_cfg = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
        gen = {"bos_token_id": 0, "eos_token_id": 0}
    else:
        tok_cfg = {
            "bos_token": {"__type": "AddedToken", "content": "<|im_start|>"},
            "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "chat_template": TEMPLATE,
        }
        gen = {"bos_token_id": 1, "eos_token_id": [2, 0]}
    (src / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    (src / "generation_config.json").write_text(json.dumps(gen))
    (src / "config.json").write_text(json.dumps(cfg))
    return src


def stage_inits(path: Path) -> set[str]:
    return {t.name for t in onnx.load(str(path)).graph.initializer}


class CutStagesTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def _cut_and_verify(self, src, n, **kw):
        out = self.tmp / f"stages-{n}"
        manifest = cut_stages.cut(src, out, n, **kw)
        worst = verify_stages.verify(src, out, atol=1e-5, prompt_len=5, steps=4, batch=2,
                                     quiet=True)
        self.assertLessEqual(worst, 1e-5)
        return out, manifest

    def _check_boundaries(self, manifest, n_layers, n):
        stages = manifest["stages"]
        self.assertEqual(len(stages), n)
        self.assertEqual(stages[0]["layer_start"], 0)
        self.assertEqual(stages[-1]["layer_end"], n_layers)
        sizes = [s["layer_end"] - s["layer_start"] for s in stages]
        self.assertLessEqual(max(sizes) - min(sizes), 1)
        for k, st in enumerate(stages):
            ls, le = st["layer_start"], st["layer_end"]
            pasts = [f"past_key_values.{l}.{t}" for l in range(ls, le) for t in ("key", "value")]
            presents = [f"present.{l}.{t}" for l in range(ls, le) for t in ("key", "value")]
            self.assertEqual([i for i in st["inputs"] if i.startswith("past_")], pasts)
            self.assertEqual(st["outputs"][1:], presents)
            self.assertEqual(st["outputs"][0], "logits" if k == n - 1 else "hidden_states_out")
            if k > 0:
                self.assertEqual(st["inputs"][0], "hidden_states")
                self.assertNotIn("input_ids", st["inputs"])
            else:
                self.assertNotIn("hidden_states", st["inputs"])

    def test_llama_all_splits(self):
        model, cfg = build_llama(num_layers=4)
        src = write_source(self.tmp, model, cfg)
        for n in range(1, 5):
            out, manifest = self._cut_and_verify(src, n)
            self._check_boundaries(manifest, 4, n)
            for k, st in enumerate(manifest["stages"]):
                if k > 0:
                    self.assertEqual(st["inputs"][:3],
                                     ["hidden_states", "attention_mask", "position_ids"])
                m = onnx.load(str(out / st["file"]))
                if k > 0:
                    hs = m.graph.input[0]
                    dims = [d.dim_param or d.dim_value for d in hs.type.tensor_type.shape.dim]
                    self.assertEqual(dims, ["batch_size", "sequence_length", 32])
                    self.assertEqual(hs.type.tensor_type.elem_type, TensorProto.FLOAT)
        one = cut_stages.cut(src, self.tmp / "one", 1)
        self.assertEqual(one["stages"][0]["inputs"],
                         [i.name for i in model.graph.input])
        self.assertEqual(one["stages"][0]["outputs"],
                         [o.name for o in model.graph.output])

    def test_gpt2_all_splits(self):
        model, cfg = build_gpt2(num_layers=3)
        src = write_source(self.tmp, model, cfg, gpt2=True)
        for n in range(1, 4):
            out, manifest = self._cut_and_verify(src, n)
            self._check_boundaries(manifest, 3, n)
            if n > 1:
                for st in manifest["stages"][1:]:
                    # learned positions are added once, in stage 0
                    self.assertNotIn("position_ids", st["inputs"])
        # the wte table: used by stage 0 (Gather) and the last stage (tied
        # head), not by a middle stage; wpe only by stage 0
        gathers = [n for n in model.graph.node if n.op_type == "Gather"]
        wte, wpe = gathers[0].input[0], gathers[1].input[0]
        s = [stage_inits(out / f"stage-{k}.onnx") for k in range(3)]
        self.assertIn(wte, s[0])
        self.assertIn(wte, s[2])
        self.assertNotIn(wte, s[1])
        self.assertIn(wpe, s[0])
        self.assertNotIn(wpe, s[1] | s[2])

    def test_past_length_from_layer0(self):
        # later stages read the past length from their own first layer's past
        model, cfg = build_llama(num_layers=3, past_len_from_layer0=True)
        src = write_source(self.tmp, model, cfg)
        for n in (2, 3):
            _, manifest = self._cut_and_verify(src, n)
            self._check_boundaries(manifest, 3, n)

    def test_manifest_fields(self):
        model, cfg = build_gpt2(num_layers=2)
        src = write_source(self.tmp, model, cfg, gpt2=True)
        m = cut_stages.cut(src, self.tmp / "g", 2, name="toy-gpt2")
        self.assertEqual(m["format_version"], 1)
        self.assertEqual(m["name"], "toy-gpt2")
        self.assertEqual(m["architecture"], "gpt2")
        c = m["config"]
        self.assertEqual((c["num_layers"], c["hidden_size"], c["num_attention_heads"]), (2, 32, 4))
        self.assertEqual((c["num_kv_heads"], c["head_dim"], c["intermediate_size"]), (4, 8, 128))
        self.assertEqual(c["max_position_embeddings"], 64)
        self.assertTrue(c["tie_word_embeddings"])
        self.assertIsNone(c["rope_theta"])
        self.assertEqual(m["special_tokens"], {
            "bos": {"id": 0, "text": "<|endoftext|>"},
            "eos": [{"id": 0, "text": "<|endoftext|>"}], "pad": None})
        self.assertIsNone(m["chat_template"])

        model, cfg = build_llama(num_layers=2)
        src = write_source(self.tmp / "l", model, cfg)
        m = cut_stages.cut(src, self.tmp / "l" / "out", 1)
        self.assertEqual(m["name"], "toy")
        self.assertEqual(m["architecture"], "llama")
        self.assertEqual(m["config"], {
            "num_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "num_kv_heads": 2,
            "head_dim": 8, "intermediate_size": 48, "vocab_size": 97,
            "max_position_embeddings": 256, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": True})
        self.assertEqual(m["special_tokens"], {
            "bos": {"id": 1, "text": "<|im_start|>"},
            "eos": [{"id": 2, "text": "<|im_end|>"}, {"id": 0, "text": "<|endoftext|>"}],
            "pad": {"id": 2, "text": "<|im_end|>"}})
        self.assertEqual(m["chat_template"], TEMPLATE)
        tok = (src / "tokenizer.json").read_bytes()
        self.assertEqual((self.tmp / "l" / "out" / "tokenizer.json").read_bytes(), tok)
        self.assertEqual(m["tokenizer"]["size"], len(tok))

    def test_untied_weights_go_to_one_stage(self):
        model, cfg = build_llama(num_layers=2, tied=False)
        src = write_source(self.tmp, model, cfg)
        out, manifest = self._cut_and_verify(src, 2)
        self.assertFalse(manifest["config"]["tie_word_embeddings"])
        emb = model.graph.node[0].input[0]
        s0, s1 = stage_inits(out / "stage-0.onnx"), stage_inits(out / "stage-1.onnx")
        self.assertIn(emb, s0)
        self.assertNotIn(emb, s1)
        self.assertIn("lm_head", s1)
        self.assertNotIn("lm_head", s0)
        self.assertFalse(s0 & s1 - {t.name for t in model.graph.initializer if t.ByteSize() < 64})
        # the weights are split, not copied: the stages add up to about the source
        total = sum(st["size"] for st in manifest["stages"])
        self.assertLess(total, 1.1 * model.ByteSize())

    def test_chunks_cover_files(self):
        model, cfg = build_llama(num_layers=2)
        src = write_source(self.tmp, model, cfg)
        out = self.tmp / "c"
        m = cut_stages.cut(src, out, 2, chunk_size=1000)
        self.assertEqual(m["chunk_size"], 1000)
        for st in m["stages"]:
            data = (out / st["file"]).read_bytes()
            self.assertEqual(st["size"], len(data))
            self.assertGreater(len(st["chunks"]), 5)
            joined = b""
            for i, c in enumerate(st["chunks"]):
                self.assertEqual(c["offset"], len(joined))
                self.assertLessEqual(c["size"], 1000)
                if i < len(st["chunks"]) - 1:
                    self.assertEqual(c["size"], 1000)
                part = data[c["offset"]: c["offset"] + c["size"]]
                self.assertEqual(verify_stages._sha(part), c["sha256"])
                joined += part
            self.assertEqual(joined, data)
        verify_stages.check_manifest(out)
        with self.assertRaises(cut_stages.CutError):
            cut_stages.cut(src, self.tmp / "bad", 2, chunk_size=(1 << 20) + 1)

    def test_verify_detects_corruption(self):
        model, cfg = build_llama(num_layers=2)
        src = write_source(self.tmp, model, cfg)
        out, _ = self._cut_and_verify(src, 2)
        path = out / "stage-1.onnx"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
        with self.assertRaisesRegex(verify_stages.VerifyError, "sha256"):
            verify_stages.check_manifest(out)
        # a stage whose weights differ but whose manifest is consistent
        other, _ = build_llama(num_layers=2, seed=5)
        src2 = write_source(self.tmp / "other", other, cfg)
        out2 = self.tmp / "other-stages"
        cut_stages.cut(src2, out2, 2)
        with self.assertRaisesRegex(verify_stages.VerifyError, "differs"):
            verify_stages.verify(src, out2, quiet=True)

    def test_deterministic(self):
        model, cfg = build_gpt2(num_layers=3)
        src = write_source(self.tmp, model, cfg, gpt2=True)
        a, b = self.tmp / "a", self.tmp / "b"
        cut_stages.cut(src, a, 3)
        cut_stages.cut(src, b, 3)
        names = sorted(p.name for p in a.iterdir())
        self.assertEqual(names, sorted(p.name for p in b.iterdir()))
        self.assertEqual(names, ["manifest.json", "stage-0.onnx", "stage-1.onnx",
                                 "stage-2.onnx", "tokenizer.json"])
        for nm in names:
            self.assertEqual((a / nm).read_bytes(), (b / nm).read_bytes(), nm)
        # re-cutting into the same directory with fewer stages drops stale files
        cut_stages.cut(src, a, 1)
        self.assertFalse((a / "stage-1.onnx").exists())

    def test_rejects_bad_stage_counts(self):
        model, cfg = build_llama(num_layers=2)
        src = write_source(self.tmp, model, cfg)
        for n in (0, 3, -1):
            with self.assertRaisesRegex(cut_stages.CutError, "between 1 and the number of layers"):
                cut_stages.cut(src, self.tmp / f"o{n}", n)
        self.assertEqual(cut_stages.main([str(src), str(self.tmp / "o"), "--stages", "3"]), 2)

    def test_rejects_graph_without_logits(self):
        model, cfg = build_llama(num_layers=2)
        for node in model.graph.node:
            node.output[:] = ["lm_out" if o == "logits" else o for o in node.output]
        model.graph.output[0].name = "lm_out"
        src = write_source(self.tmp, model, cfg)
        with self.assertRaisesRegex(cut_stages.CutError, "no 'logits' output"):
            cut_stages.cut(src, self.tmp / "o", 2)

    def test_rejects_layer_count_mismatch(self):
        model, cfg = build_llama(num_layers=2)
        cfg["num_hidden_layers"] = 3
        src = write_source(self.tmp, model, cfg)
        with self.assertRaisesRegex(cut_stages.CutError, "config.json says 3"):
            cut_stages.cut(src, self.tmp / "o", 2)

    def _leak(self, model, target, source_nodes):
        """Rewrites `target` to target_raw + 0 * sum(extra) with nodes `source_nodes`."""
        g = model.graph
        for n in g.node:
            n.input[:] = [target + "_raw" if i == target else i for i in n.input]
            n.output[:] = [target + "_raw" if o == target else o for o in n.output]
        g.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), "zero_f"))
        g.node.extend(source_nodes)
        g.node.extend([
            helper.make_node("ReduceSum", ["leak_src"], ["leak"], keepdims=0),
            helper.make_node("Mul", ["leak", "zero_f"], ["leak0"]),
            helper.make_node("Add", [target + "_raw", "leak0"], [target]),
        ])
        onnx.checker.check_model(model)
        return model

    def test_rejects_early_part_needing_late_part(self):
        # present.0.key also value-depends on the last hidden state
        model, cfg = build_llama(num_layers=2)
        final_h = next(n for n in model.graph.node if "logits" in n.output).input[0]
        self._leak(model, "present.0.key",
                   [helper.make_node("Identity", [final_h], ["leak_src"])])
        src = write_source(self.tmp, model, cfg)
        with self.assertRaisesRegex(cut_stages.CutError, "early part would need the late part"):
            cut_stages.cut(src, self.tmp / "o", 2)
        cut_stages.cut(src, self.tmp / "o1", 1)  # one stage is always possible

    def test_rejects_graph_without_single_cut(self):
        # the logits also read input_ids through a second embedding lookup
        model, cfg = build_llama(num_layers=2)
        emb = model.graph.node[0].input[0]
        self._leak(model, "logits",
                   [helper.make_node("Gather", [emb, "input_ids"], ["leak_src"], axis=0)])
        src = write_source(self.tmp, model, cfg)
        with self.assertRaisesRegex(cut_stages.CutError, "no single tensor separates"):
            cut_stages.cut(src, self.tmp / "o", 2)


if __name__ == "__main__":
    unittest.main()
