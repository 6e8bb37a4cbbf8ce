#!/usr/bin/env python3
"""Builds a llama decoder ONNX (standard decoder layout, docs/model-format.md).

One graph builder (`build_decoder`), two front ends:

    build_llama_onnx.py from-gguf MODEL.gguf OUTDIR   # real model from a GGUF file
    build_llama_onnx.py tiny OUTDIR --seed N          # tiny random llama for tests

Both write OUTDIR/{model.onnx, config.json, tokenizer.json,
tokenizer_config.json, generation_config.json}. The ONNX is a single file
(no external data) so that it can be loaded from bytes.

Graph conventions (relied on by scripts/cut_stages.py):

* shared nodes that only read `position_ids` / `attention_mask` come first:
  `/model/rotary_emb/...` (cos/sin) and `/model/attn_mask/...` (additive bias);
  they never read `input_ids`;
* `/model/embed_tokens/output` is the embedding output ([B, S, hidden]);
* everything of layer i is named `/model/layers.{i}/...`, its output (the
  hidden state after the layer) is `/model/layers.{i}/output`;
* the final norm output is `/model/norm/output`, then `logits`.

Weights use the HF llama layout and names (`model.layers.{i}.self_attn.q_proj.weight`
[out, in], ...). Q/K rows are in HF order: rotary embedding is the HF
`rotate_half` form.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "llm-canister/build_llama_onnx"
# Additive attention bias for masked positions (large negative, not -inf: a
# fully masked row must not give NaN).
MASK_MIN = -3.0e38

# The SmolLM2-Instruct chat template (tokenizer.chat_template of the GGUF).
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# --------------------------------------------------------------------------
# Graph builder
# --------------------------------------------------------------------------


class _G:
    """Small helper around onnx.helper that names nodes like optimum."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self._consts = {}
        self._counts = {}

    def init(self, name, array):
        # (not np.ascontiguousarray: it turns 0-d scalars into shape [1])
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def const(self, value, dtype):
        """A shared constant initializer (scalars and small vectors)."""
        arr = np.array(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = "/const/%s_%d" % (arr.dtype.name, len(self._consts))
            self.init(name, arr)
            self._consts[key] = name
        return self._consts[key]

    def op(self, scope, op_type, inputs, out=None, **attrs):
        n = self._counts.get((scope, op_type), 0)
        self._counts[(scope, op_type)] = n + 1
        node_name = "%s/%s%s" % (scope, op_type, "" if n == 0 else "_%d" % n)
        if out is None:
            out = node_name + "_output_0"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=node_name, **attrs))
        return out


def _check_config(cfg):
    need = ["num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
            "head_dim", "intermediate_size", "vocab_size", "rope_theta", "rms_norm_eps"]
    for k in need:
        if k not in cfg:
            raise ValueError("config lacks %s" % k)
    if cfg["num_attention_heads"] % cfg["num_key_value_heads"]:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    if cfg["head_dim"] % 2:
        raise ValueError("head_dim must be even")


def rope_inv_freq(head_dim, theta):
    """HF LlamaRotaryEmbedding default inv_freq, float32 [head_dim/2]."""
    exps = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    return (1.0 / (np.float32(theta) ** exps)).astype(np.float32)


def build_decoder(cfg, weights, name="llama", gqa="broadcast"):
    """Returns an onnx.ModelProto of the decoder.

    cfg: HF-style llama config dict. weights: HF names -> float32 arrays
    (`lm_head.weight` optional when tie_word_embeddings).
    gqa: "broadcast" (grouped 5-D MatMul, K/V heads broadcast over the group
    axis, no copies) or "expand" (K/V explicitly expanded to all heads).
    """
    _check_config(cfg)
    L = cfg["num_hidden_layers"]
    H = cfg["hidden_size"]
    NH = cfg["num_attention_heads"]
    KV = cfg["num_key_value_heads"]
    D = cfg["head_dim"]
    R = NH // KV
    V = cfg["vocab_size"]
    eps = float(cfg["rms_norm_eps"])
    f32 = np.float32
    i64 = np.int64

    def w(name):
        a = weights[name]
        if a.dtype != np.float32:
            a = a.astype(np.float32)
        return a

    g = _G()

    # ---- inputs / outputs
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", V])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                "past_key_values.%d.%s" % (i, kv), TensorProto.FLOAT,
                ["batch_size", KV, "past_sequence_length", D]))
    for i in range(L):
        for kv in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(
                "present.%d.%s" % (i, kv), TensorProto.FLOAT,
                ["batch_size", KV, "total_sequence_length", D]))

    # ---- rotary embedding (from position_ids only)
    sc = "/model/rotary_emb"
    inv_freq = g.init("model.rotary_emb.inv_freq", rope_inv_freq(D, cfg["rope_theta"]))
    pos_f = g.op(sc, "Cast", ["position_ids"], to=TensorProto.FLOAT)                 # [B,S]
    pos_3 = g.op(sc, "Unsqueeze", [pos_f, g.const([2], i64)])                       # [B,S,1]
    freqs = g.op(sc, "Mul", [pos_3, inv_freq])                                        # [B,S,D/2]
    emb = g.op(sc, "Concat", [freqs, freqs], axis=2)                                  # [B,S,D]
    cos3 = g.op(sc, "Cos", [emb])
    sin3 = g.op(sc, "Sin", [emb])
    cos4 = g.op(sc, "Unsqueeze", [cos3, g.const([1], i64)], out=sc + "/cos")        # [B,1,S,D]
    sin4 = g.op(sc, "Unsqueeze", [sin3, g.const([1], i64)], out=sc + "/sin")
    if gqa == "broadcast":
        cos_q = g.op(sc, "Unsqueeze", [cos4, g.const([1], i64)], out=sc + "/cos_q")  # [B,1,1,S,D]
        sin_q = g.op(sc, "Unsqueeze", [sin4, g.const([1], i64)], out=sc + "/sin_q")
    else:
        cos_q, sin_q = cos4, sin4

    # ---- attention bias (from attention_mask and position_ids only)
    # Causal on cache indices: query s (of S new tokens) sits at index
    # T - S + s of the T keys (past + new), whatever its position id, so
    # left padding (masked keys, shifted position ids) works as in HF.
    sc = "/model/attn_mask"
    mask_shape = g.op(sc, "Shape", ["attention_mask"])
    total_len = g.op(sc, "Gather", [mask_shape, g.const(1, i64)], axis=0)            # scalar T
    pos_shape = g.op(sc, "Shape", ["position_ids"])
    new_len = g.op(sc, "Gather", [pos_shape, g.const(1, i64)], axis=0)               # scalar S
    past_len = g.op(sc, "Sub", [total_len, new_len])                                  # scalar P
    key_idx = g.op(sc, "Range", [g.const(0, i64), total_len, g.const(1, i64)])        # [T]
    q_idx = g.op(sc, "Range", [past_len, total_len, g.const(1, i64)])                 # [S]
    q_idx2 = g.op(sc, "Unsqueeze", [q_idx, g.const([1], i64)])                        # [S,1]
    future = g.op(sc, "Greater", [key_idx, q_idx2])                                    # [S,T]
    causal = g.op(sc, "Not", [future])
    valid = g.op(sc, "Equal", ["attention_mask", g.const(1, i64)])                    # [B,T]
    valid3 = g.op(sc, "Unsqueeze", [valid, g.const([1], i64)])                        # [B,1,T]
    allowed = g.op(sc, "And", [causal, valid3])                                        # [B,S,T]
    bias3 = g.op(sc, "Where", [allowed, g.const(0.0, f32), g.const(MASK_MIN, f32)])
    bias_axes = [1, 2] if gqa == "broadcast" else [1]
    bias = g.op(sc, "Unsqueeze", [bias3, g.const(bias_axes, i64)], out=sc + "/bias")  # [B,1,(1,)S,T]

    # ---- helpers
    def rms_norm(scope, x, weight_name):
        sq = g.op(scope, "Mul", [x, x])
        ms = g.op(scope, "ReduceMean", [sq], axes=[-1], keepdims=1)
        ms_eps = g.op(scope, "Add", [ms, g.const(eps, f32)])
        rt = g.op(scope, "Sqrt", [ms_eps])
        inv = g.op(scope, "Reciprocal", [rt])
        xn = g.op(scope, "Mul", [x, inv])
        wt = g.init(weight_name, w(weight_name))
        return g.op(scope, "Mul", [xn, wt], out=scope + "/output")

    def linear(scope, x, weight_name):
        wt = g.init(weight_name + ".T", np.ascontiguousarray(w(weight_name).T))
        return g.op(scope, "MatMul", [x, wt])

    def rope(scope, x, cos, sin, axis):
        half = D // 2
        x1 = g.op(scope, "Slice", [x, g.const([0], i64), g.const([half], i64), g.const([axis], i64)])
        x2 = g.op(scope, "Slice", [x, g.const([half], i64), g.const([D], i64), g.const([axis], i64)])
        nx2 = g.op(scope, "Neg", [x2])
        rot = g.op(scope, "Concat", [nx2, x1], axis=axis)
        a = g.op(scope, "Mul", [x, cos])
        b = g.op(scope, "Mul", [rot, sin])
        return g.op(scope, "Add", [a, b])

    # ---- embedding
    embed_name = "model.embed_tokens.weight"
    g.init(embed_name, w(embed_name))
    hidden = g.op("/model/embed_tokens", "Gather", [embed_name, "input_ids"], axis=0,
                  out="/model/embed_tokens/output")

    scale = 1.0 / math.sqrt(D)
    for i in range(L):
        p = "/model/layers.%d" % i
        hp = "model.layers.%d." % i
        xn = rms_norm(p + "/input_layernorm", hidden, hp + "input_layernorm.weight")

        sa = p + "/self_attn"
        q = linear(sa + "/q_proj", xn, hp + "self_attn.q_proj.weight")   # [B,S,NH*D]
        k = linear(sa + "/k_proj", xn, hp + "self_attn.k_proj.weight")   # [B,S,KV*D]
        v = linear(sa + "/v_proj", xn, hp + "self_attn.v_proj.weight")

        if gqa == "broadcast":
            q = g.op(sa, "Reshape", [q, g.const([0, 0, KV, R, D], i64)])          # [B,S,KV,R,D]
            q = g.op(sa, "Transpose", [q], perm=[0, 2, 3, 1, 4])                  # [B,KV,R,S,D]
            q = rope(sa + "/q_rotary", q, cos_q, sin_q, 4)
        else:
            q = g.op(sa, "Reshape", [q, g.const([0, 0, NH, D], i64)])
            q = g.op(sa, "Transpose", [q], perm=[0, 2, 1, 3])                     # [B,NH,S,D]
            q = rope(sa + "/q_rotary", q, cos_q, sin_q, 3)
        q = g.op(sa, "Mul", [q, g.const(scale, f32)])

        k = g.op(sa, "Reshape", [k, g.const([0, 0, KV, D], i64)])
        k = g.op(sa, "Transpose", [k], perm=[0, 2, 1, 3])                         # [B,KV,S,D]
        k = rope(sa + "/k_rotary", k, cos4, sin4, 3)
        v = g.op(sa, "Reshape", [v, g.const([0, 0, KV, D], i64)])
        v = g.op(sa, "Transpose", [v], perm=[0, 2, 1, 3])

        pk = g.op(sa, "Concat", ["past_key_values.%d.key" % i, k], axis=2, out="present.%d.key" % i)
        pv = g.op(sa, "Concat", ["past_key_values.%d.value" % i, v], axis=2, out="present.%d.value" % i)

        if gqa == "broadcast":
            k5 = g.op(sa, "Unsqueeze", [pk, g.const([2], i64)])                   # [B,KV,1,T,D]
            v5 = g.op(sa, "Unsqueeze", [pv, g.const([2], i64)])
            kt = g.op(sa, "Transpose", [k5], perm=[0, 1, 2, 4, 3])                # [B,KV,1,D,T]
            scores = g.op(sa, "MatMul", [q, kt])                                  # [B,KV,R,S,T]
            scores = g.op(sa, "Add", [scores, bias])
            probs = g.op(sa, "Softmax", [scores], axis=-1)
            ctx = g.op(sa, "MatMul", [probs, v5])                                 # [B,KV,R,S,D]
            ctx = g.op(sa, "Transpose", [ctx], perm=[0, 3, 1, 2, 4])              # [B,S,KV,R,D]
        else:
            rep = g.const([1, 1, R, 1, 1], i64)
            k5 = g.op(sa, "Unsqueeze", [pk, g.const([2], i64)])
            v5 = g.op(sa, "Unsqueeze", [pv, g.const([2], i64)])
            k5 = g.op(sa, "Expand", [k5, rep])                                    # [B,KV,R,T,D]
            v5 = g.op(sa, "Expand", [v5, rep])
            kx = g.op(sa, "Reshape", [k5, g.const([0, NH, -1, D], i64)])          # [B,NH,T,D]
            vx = g.op(sa, "Reshape", [v5, g.const([0, NH, -1, D], i64)])
            kt = g.op(sa, "Transpose", [kx], perm=[0, 1, 3, 2])
            scores = g.op(sa, "MatMul", [q, kt])                                  # [B,NH,S,T]
            scores = g.op(sa, "Add", [scores, bias])
            probs = g.op(sa, "Softmax", [scores], axis=-1)
            ctx = g.op(sa, "MatMul", [probs, vx])                                 # [B,NH,S,D]
            ctx = g.op(sa, "Transpose", [ctx], perm=[0, 2, 1, 3])                 # [B,S,NH,D]
        ctx = g.op(sa, "Reshape", [ctx, g.const([0, 0, NH * D], i64)])            # [B,S,NH*D]
        attn = linear(sa + "/o_proj", ctx, hp + "self_attn.o_proj.weight")
        hidden = g.op(p, "Add", [hidden, attn])

        xn = rms_norm(p + "/post_attention_layernorm", hidden, hp + "post_attention_layernorm.weight")
        mp = p + "/mlp"
        gate = linear(mp + "/gate_proj", xn, hp + "mlp.gate_proj.weight")
        up = linear(mp + "/up_proj", xn, hp + "mlp.up_proj.weight")
        sig = g.op(mp + "/act_fn", "Sigmoid", [gate])
        act = g.op(mp + "/act_fn", "Mul", [gate, sig])
        h = g.op(mp, "Mul", [act, up])
        down = linear(mp + "/down_proj", h, hp + "mlp.down_proj.weight")
        hidden = g.op(p, "Add", [hidden, down], out=p + "/output")

    xn = rms_norm("/model/norm", hidden, "model.norm.weight")
    if "lm_head.weight" in weights and not cfg.get("tie_word_embeddings", False):
        wt = g.init("lm_head.weight.T", np.ascontiguousarray(w("lm_head.weight").T))
        g.op("/lm_head", "MatMul", [xn, wt], out="logits")
    else:
        # Tied: the embedding matrix is stored once and transposed in-graph
        # (runtimes fold the Transpose of a constant at load time).
        et = g.op("/lm_head", "Transpose", [embed_name], perm=[1, 0])
        g.op("/lm_head", "MatMul", [xn, et], out="logits")

    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, producer_name=PRODUCER, producer_version="1",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def save_model(model, path):
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return data


# --------------------------------------------------------------------------
# Tokenizer files
# --------------------------------------------------------------------------


def byte_level_bpe_json(vocab_tokens, merges, special_ids):
    """HF tokenizer.json (byte-level BPE, SmolLM2 pre-tokenizer) as a string.

    vocab_tokens: list of token strings indexed by id. merges: list of
    (left, right) pairs, highest priority first. special_ids: ids of the
    control tokens (added as special tokens).
    """
    added = [{
        "id": int(i), "content": vocab_tokens[i], "single_word": False, "lstrip": False,
        "rstrip": False, "normalized": False, "special": True,
    } for i in sorted(special_ids)]
    vocab = {}
    for i, t in enumerate(vocab_tokens):
        if t in vocab:
            raise ValueError("duplicate token %r" % t)
        vocab[t] = i
    for a, b in merges:
        if " " in a or " " in b:
            raise ValueError("merge with a space: %r %r" % (a, b))
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": ["%s %s" % (a, b) for a, b in merges],
        },
    }
    return json.dumps(tok, ensure_ascii=False, indent=2) + "\n"


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_model_dir(outdir, cfg, weights, tokenizer_json, tok_cfg, gen_cfg, name, gqa="broadcast"):
    os.makedirs(outdir, exist_ok=True)
    model = build_decoder(cfg, weights, name=name, gqa=gqa)
    tmp = os.path.join(outdir, "model.onnx.tmp")
    data = save_model(model, tmp)
    os.replace(tmp, os.path.join(outdir, "model.onnx"))
    write_json(os.path.join(outdir, "config.json"), cfg)
    with open(os.path.join(outdir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tokenizer_json)
    write_json(os.path.join(outdir, "tokenizer_config.json"), tok_cfg)
    write_json(os.path.join(outdir, "generation_config.json"), gen_cfg)
    print("wrote %s (model.onnx %d bytes, sha256 %s)" % (
        outdir, len(data), hashlib.sha256(data).hexdigest()))


def tokenizer_config(tokens, bos_id, eos_id, pad_id, unk_id, special_ids, chat_template, max_len):
    def t(i):
        return None if i is None else tokens[i]
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(i): {
            "content": tokens[i], "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True} for i in sorted(special_ids)},
        "additional_special_tokens": [tokens[i] for i in sorted(special_ids)
                                      if i not in (bos_id, eos_id, pad_id, unk_id)],
        "bos_token": t(bos_id),
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": t(eos_id),
        "model_max_length": max_len,
        "pad_token": t(pad_id),
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": t(unk_id),
    }


def eos_ids(tokens, eos_id, special_ids):
    """EOS list for generation_config: the model's EOS, then the other
    end-of-generation control tokens llama.cpp also stops on."""
    out = [eos_id] if eos_id is not None else []
    for text in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"):
        for i in special_ids:
            if tokens[i] == text and i not in out:
                out.append(i)
    return out


def hf_config(L, H, NH, KV, D, I, V, max_pos, theta, eps, tie, bos, eos):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "num_hidden_layers": L,
        "hidden_size": H,
        "num_attention_heads": NH,
        "num_key_value_heads": KV,
        "head_dim": D,
        "intermediate_size": I,
        "vocab_size": V,
        "max_position_embeddings": max_pos,
        "rope_theta": float(theta),
        "rope_scaling": None,
        "rms_norm_eps": float(eps),
        "tie_word_embeddings": bool(tie),
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------
# GGUF front end
# --------------------------------------------------------------------------


def gguf_field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def unpermute_qk(w, n_head):
    """Inverse of llama.cpp convert_hf_to_gguf's `permute` of q/k rows.

    convert: w.reshape(n_head, 2, rows//n_head//2, cols).swapaxes(1, 2)
    (HF rotate_half halves -> interleaved pairs). This undoes it."""
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def read_gguf(path, unpermute=True):
    """Reads a llama GGUF. Returns (hparams dict, HF-named f32 weights, tokenizer info)."""
    import gguf
    from gguf.quants import dequantize

    r = gguf.GGUFReader(path)
    arch = gguf_field(r, "general.architecture")
    if arch != "llama":
        raise ValueError("unsupported architecture %r" % arch)
    hp = {
        "L": int(gguf_field(r, "llama.block_count")),
        "H": int(gguf_field(r, "llama.embedding_length")),
        "NH": int(gguf_field(r, "llama.attention.head_count")),
        "KV": int(gguf_field(r, "llama.attention.head_count_kv", gguf_field(r, "llama.attention.head_count"))),
        "I": int(gguf_field(r, "llama.feed_forward_length")),
        "theta": float(np.float32(gguf_field(r, "llama.rope.freq_base", 10000.0))),
        "eps": float(np.float32(gguf_field(r, "llama.attention.layer_norm_rms_epsilon", 1e-5))),
        "ctx": int(gguf_field(r, "llama.context_length", 2048)),
    }
    hp["D"] = int(gguf_field(r, "llama.attention.key_length", hp["H"] // hp["NH"]))
    rope_dim = gguf_field(r, "llama.rope.dimension_count")
    if rope_dim is not None and int(rope_dim) != hp["D"]:
        raise ValueError("partial rotary (rope.dimension_count %s != head_dim %d) unsupported" % (rope_dim, hp["D"]))
    if gguf_field(r, "llama.rope.scaling.type") not in (None, "none"):
        raise ValueError("rope scaling unsupported")

    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_layer = {
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    }
    weights = {}
    for t in r.tensors:
        if t.name in names:
            hf = names[t.name]
        elif t.name.startswith("blk."):
            _, i, rest = t.name.split(".", 2)
            base, suffix = rest.rsplit(".", 1)
            if base not in per_layer or suffix != "weight":
                raise ValueError("unexpected tensor %s" % t.name)
            hf = "model.layers.%s.%s.weight" % (i, per_layer[base])
        elif t.name == "rope_freqs.weight":
            raise ValueError("rope_freqs (llama3 rope scaling) unsupported")
        else:
            raise ValueError("unexpected tensor %s" % t.name)
        a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        shape = tuple(int(x) for x in reversed(t.shape))   # GGUF shape is (cols, rows)
        a = a.reshape(shape)
        if unpermute and hf.endswith("q_proj.weight"):
            a = unpermute_qk(a, hp["NH"])
        elif unpermute and hf.endswith("k_proj.weight"):
            a = unpermute_qk(a, hp["KV"])
        weights[hf] = np.ascontiguousarray(a)

    tokens = list(gguf_field(r, "tokenizer.ggml.tokens"))
    tok = {
        "model": gguf_field(r, "tokenizer.ggml.model"),
        "pre": gguf_field(r, "tokenizer.ggml.pre"),
        "tokens": tokens,
        "token_type": [int(x) for x in gguf_field(r, "tokenizer.ggml.token_type", [1] * len(tokens))],
        "merges": list(gguf_field(r, "tokenizer.ggml.merges", [])),
        "bos": gguf_field(r, "tokenizer.ggml.bos_token_id"),
        "eos": gguf_field(r, "tokenizer.ggml.eos_token_id"),
        "pad": gguf_field(r, "tokenizer.ggml.padding_token_id"),
        "unk": gguf_field(r, "tokenizer.ggml.unknown_token_id"),
        "chat_template": gguf_field(r, "tokenizer.chat_template"),
        "name": gguf_field(r, "general.name"),
    }
    hp["V"] = int(gguf_field(r, "llama.vocab_size", len(tokens)))
    if weights["model.embed_tokens.weight"].shape != (hp["V"], hp["H"]):
        raise ValueError("token_embd shape %s" % (weights["model.embed_tokens.weight"].shape,))
    return hp, weights, tok


def cmd_from_gguf(args):
    hp, weights, tok = read_gguf(args.gguf)
    if tok["model"] != "gpt2":
        raise ValueError("only byte-level BPE (tokenizer.ggml.model gpt2) is supported, got %r" % tok["model"])
    tokens = tok["tokens"]
    special = [i for i, t in enumerate(tok["token_type"]) if t == 3]   # CONTROL
    merges = [tuple(m.split(" ")) for m in tok["merges"]]
    for m in merges:
        if len(m) != 2:
            raise ValueError("bad merge %r" % (m,))
    tie = "lm_head.weight" not in weights
    bos = None if tok["bos"] is None else int(tok["bos"])
    eos = None if tok["eos"] is None else int(tok["eos"])
    pad = None if tok["pad"] is None else int(tok["pad"])
    unk = None if tok["unk"] is None else int(tok["unk"])
    cfg = hf_config(hp["L"], hp["H"], hp["NH"], hp["KV"], hp["D"], hp["I"], hp["V"], hp["ctx"],
                    hp["theta"], hp["eps"], tie, bos, eos)
    tj = byte_level_bpe_json(tokens, merges, special)
    tcfg = tokenizer_config(tokens, bos, eos, pad, unk, special, tok["chat_template"], hp["ctx"])
    gen = {"bos_token_id": bos, "eos_token_id": eos_ids(tokens, eos, special), "pad_token_id": pad,
           "do_sample": False}
    name = args.name or os.path.basename(os.path.normpath(os.path.dirname(os.path.abspath(args.outdir))))
    write_model_dir(args.outdir, cfg, weights, tj, tcfg, gen, name, gqa=args.gqa)


# --------------------------------------------------------------------------
# Tiny front end
# --------------------------------------------------------------------------

TINY_TEXT = """\
The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is Madrid.
The capital of Germany is Berlin. Paris is a large city on the river Seine, and it is known for
its museums, its bridges and its old streets. Once upon a time there was a little girl who lived
in a small house near the forest. Every morning she walked to the river to fetch water, and every
evening she told her mother what she had seen: the birds in the trees, the fish in the water, and
the old man who sold bread in the market. One day she met a fox who could talk. "Hello," said the
fox, "my name is Fox, and I know the way to the city." The girl was surprised, but she was not
afraid. "What is the capital of France?" she asked. "Paris," said the fox, "and it is a long way
from here." They walked together for three days and three nights. On the fourth day they saw the
lights of the city. The girl thanked the fox and went to find her uncle, who worked in a bakery.
Hello, my name is Anna. I am a helpful assistant. I can answer questions about the world, about
numbers such as 1, 2, 3, 10, 42 and 2024, and about the weather. The weather today is sunny and
warm. What is your name? My name is Anna. How are you? I am fine, thank you. What time is it?
It is ten o'clock in the morning. The quick brown fox jumps over the lazy dog. A journey of a
thousand miles begins with a single step. To be or not to be, that is the question. In the
beginning there was nothing, and then there was light. The sun rises in the east and sets in the
west. Water is made of hydrogen and oxygen. The earth goes around the sun once every year.
"""

TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer(vocab_size=512):
    """Deterministic small byte-level BPE (tokens list, merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, special_tokens=TINY_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    lines = TINY_TEXT.splitlines(keepends=True)
    tk.train_from_iterator(lines, trainer=trainer)
    d = json.loads(tk.to_str())
    vocab = d["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    if any(t is None for t in tokens):
        raise RuntimeError("non-contiguous trained vocab")
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in d["model"]["merges"]]
    return tokens, merges


def tiny_weights(cfg, seed):
    rng = np.random.default_rng(seed)
    H, NH, KV, D, I, V = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads",
                                           "head_dim", "intermediate_size", "vocab_size"))

    def mat(rows, cols, std):
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w = {"model.embed_tokens.weight": mat(V, H, 0.5)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = mat(NH * D, H, 0.3)
        w[p + "self_attn.k_proj.weight"] = mat(KV * D, H, 0.3)
        w[p + "self_attn.v_proj.weight"] = mat(KV * D, H, 0.3)
        w[p + "self_attn.o_proj.weight"] = mat(H, NH * D, 0.2)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "mlp.gate_proj.weight"] = mat(I, H, 0.3)
        w[p + "mlp.up_proj.weight"] = mat(I, H, 0.3)
        w[p + "mlp.down_proj.weight"] = mat(H, I, 0.2)
    w["model.norm.weight"] = norm(H)
    return w


def tiny_config(vocab_size, layers=2):
    # bos/eos ids follow the fixed special token order of TINY_SPECIALS.
    return hf_config(layers, 64, 4, 2, 16, 128, vocab_size, 512, 10000.0, 1e-5, True, 1, 2)


def cmd_tiny(args):
    tokens, merges = tiny_tokenizer(512)
    cfg = tiny_config(len(tokens), args.layers)
    weights = tiny_weights(cfg, args.seed)
    special = list(range(len(TINY_SPECIALS)))
    tj = byte_level_bpe_json(tokens, merges, special)
    tcfg = tokenizer_config(tokens, 1, 2, 2, 0, special, SMOLLM2_CHAT_TEMPLATE, cfg["max_position_embeddings"])
    gen = {"bos_token_id": 1, "eos_token_id": eos_ids(tokens, 2, special), "pad_token_id": 2,
           "do_sample": False}
    write_model_dir(args.outdir, cfg, weights, tj, tcfg, gen, args.name or "tiny-llama", gqa=args.gqa)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("from-gguf", help="convert a llama GGUF")
    a.add_argument("gguf")
    a.add_argument("outdir")
    a.add_argument("--name", help="graph name (default: the model directory's name)")
    a.add_argument("--gqa", choices=["broadcast", "expand"], default="broadcast")
    a.set_defaults(fn=cmd_from_gguf)
    b = sub.add_parser("tiny", help="tiny random llama")
    b.add_argument("outdir")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--layers", type=int, default=2)
    b.add_argument("--name")
    b.add_argument("--gqa", choices=["broadcast", "expand"], default="broadcast")
    b.set_defaults(fn=cmd_tiny)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
