#!/usr/bin/env python3
"""Cut a decoder ONNX (standard layout) into N pipeline stages.

Usage:

    cut_stages.py SOURCE_DIR OUT_DIR --stages N [--name NAME] [--chunk-size BYTES]

SOURCE_DIR holds ``model.onnx`` (decoder with KV cache, see
docs/model-format.md), the HF ``config.json``, ``tokenizer.json``,
``tokenizer_config.json`` and optionally ``generation_config.json``.
OUT_DIR receives ``stage-0.onnx`` ... ``stage-<N-1>.onnx``, a copy of
``tokenizer.json`` and ``manifest.json`` (format in docs/model-format.md).

How the cut is found (generic: no node or initializer names are used, only the
standard graph I/O names ``input_ids``, ``logits``, ``present.{l}.key|value``)
----------------------------------------------------------------------------

1. *Value graph.*  A tensor is value-dependent when its value depends on the
   values of ``input_ids``: ``input_ids`` is, and so is every output of a node
   with a value-dependent input, except the outputs of ``Shape`` and ``Size``
   (they depend only on shapes).  Tensors referenced from a subgraph
   (If/Loop/Scan) count as inputs of the node that owns the subgraph.  The
   value graph has these tensors as vertices and an edge ``a -> b`` when ``b``
   is an output of a node that reads the value-dependent tensor ``a``.

2. *Dominators.*  On that DAG, rooted at ``input_ids``, the immediate
   dominators are computed in one pass in topological order (Cooper, Harvey &
   Kennedy's "intersect" on a DAG).  ``d`` dominates ``t`` when every
   value path from ``input_ids`` to ``t`` goes through ``d``.

3. *Cut before layer L.*  The targets are the outputs that belong to layers
   ``>= L``: ``present.{j}.key|value`` for ``j >= L`` and ``logits``.  The cut
   tensor is their latest common dominator, i.e. the lowest common ancestor of
   the targets in the dominator tree (unique by construction).  In a
   pre-norm residual decoder that is the residual stream after layer L-1:
   the keys/values of layer L hang off norm(residual) while the logits hang
   off the residual through the skip connections.

4. *Checks* (a failing check is an error, nothing is written):
   the cut is not ``input_ids`` itself (some single tensor separates the
   layers); it is float32 with a rank-3 shape ``[batch, sequence, hidden]``
   (ONNX shape inference, where it can tell); no ``present.{j}.*`` with
   ``j < L`` value-depends on it (the early part does not need the late
   part); the cuts are strictly ordered (cut L+1 is a proper value descendant
   of cut L); inside every stage no node is value-downstream of the stage's
   own output cut, and no output of a stage but the first value-depends on
   ``input_ids`` except through its ``hidden_states`` input.

5. *Extraction.*  A stage is the backward closure of its outputs, stopping at
   its input cut, graph inputs and initializers (own extractor: it copies only
   the nodes and initializers reached, so shared and tied initializers are
   simply copied into every stage that uses them).  The input cut is renamed
   ``hidden_states`` and the output cut ``hidden_states_out`` (see below).
   Later stages may still read the *shape* of an early tensor (e.g.
   ``Shape(input_ids)`` or ``Shape(inputs_embeds)`` feeding the attention
   mask, as HF/optimum exports do).  Such a ``Shape``/``Size`` node is
   rewritten to read ``hidden_states`` instead when the early tensor's shape
   equals the cut's shape or a prefix of it (``[batch, seq]`` of
   ``[batch, seq, hidden]``): proven by ONNX symbolic shape inference, or,
   where that loses the symbols (broadcasts with the attention bias), checked
   by running the source once with onnxruntime on four (batch, sequence,
   past) sizes with those tensors as extra outputs.  Failing both, the early
   computation is duplicated into the stage (with a warning) and the stage
   declares ``input_ids``.  Likewise a stage that reads only the shape of
   another stage's ``past_key_values.{j}.*`` (optimum exports take the past
   length from layer 0) reads it from its own first layer's past instead
   (same declared shape); any other use of a foreign past is an error.

Stage boundary names: ONNX graphs are in SSA form, so a middle stage cannot
have an input and an output both called ``hidden_states``.  Every stage but
the first takes ``hidden_states`` as input; every stage but the last emits
``hidden_states_out``; the engine feeds stage k's ``hidden_states_out`` to
stage k+1's ``hidden_states``.  Both are float32
``[batch_size, sequence_length, hidden_size]``.

The output is deterministic: the same input gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import helper, TensorProto

FORMAT_VERSION = 1
MAX_CHUNK_SIZE = 1 << 20
DEFAULT_CHUNK_SIZE = MAX_CHUNK_SIZE

HIDDEN_IN = "hidden_states"
HIDDEN_OUT = "hidden_states_out"
ROOT = "input_ids"
LOGITS = "logits"
PAST_RE = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
PRESENT_RE = re.compile(r"^present\.(\d+)\.(key|value)$")
SHAPE_OPS = ("Shape", "Size")

# HF model types whose config class defaults tie_word_embeddings to False
# (PretrainedConfig defaults it to True, and config.json omits defaults).
UNTIED_BY_DEFAULT = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "phi3", "olmo", "olmo2", "granite", "stablelm", "starcoder2", "cohere",
}
# HF model types with learned / absolute positions (no rotary theta).
NO_ROPE = {"gpt2", "gpt_neo", "gpt_bigcode", "opt", "bloom", "codegen_no_rope"}


class CutError(Exception):
    """A model that cannot be cut, with the reason."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# graph analysis


def _subgraphs(node: onnx.NodeProto):
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _outer_refs(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes."""
    defined = {i.name for i in graph.input}
    defined |= {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        for name in node.input:
            if name:
                used.add(name)
        for sub in _subgraphs(node):
            used |= _outer_refs(sub)
        defined |= {o for o in node.output if o}
    for o in graph.output:
        used.add(o.name)
    return used - defined


def _rename_in_graph(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Rename tensors in a (sub)graph in place (inputs, outputs, nodes)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
        for sub in _subgraphs(node):
            _rename_in_graph(sub, mapping)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name in mapping:
            vi.name = mapping[vi.name]
    for t in graph.initializer:
        if t.name in mapping:
            t.name = mapping[t.name]


def _dims_of(type_proto: onnx.TypeProto):
    """(elem_type, dims) of a tensor type; a dim is int, str or None."""
    if not type_proto.HasField("tensor_type"):
        return None, None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tt.elem_type, dims


@dataclass
class Analysis:
    model: onnx.ModelProto
    nodes: list = field(default_factory=list)
    node_inputs: list = field(default_factory=list)
    producer: dict = field(default_factory=dict)
    init_names: set = field(default_factory=set)
    input_names: list = field(default_factory=list)
    output_names: list = field(default_factory=list)
    vdep: set = field(default_factory=set)
    preds: dict = field(default_factory=dict)
    succs: dict = field(default_factory=dict)
    topo: dict = field(default_factory=dict)
    idom: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)
    all_names: set = field(default_factory=set)


def analyse(model: onnx.ModelProto) -> Analysis:
    g = model.graph
    a = Analysis(model=model)
    a.init_names = {t.name for t in g.initializer} | {
        t.values.name for t in g.sparse_initializer
    }
    a.input_names = [i.name for i in g.input if i.name not in a.init_names]
    a.output_names = [o.name for o in g.output]
    if "use_cache_branch" in a.input_names:
        raise CutError(
            "this is an optimum 'merged' decoder (If on use_cache_branch); "
            "export the plain decoder-with-past instead (optimum: --no-post-process)"
        )
    if ROOT not in a.input_names:
        raise CutError(f"the graph has no '{ROOT}' input")
    if LOGITS not in a.output_names:
        raise CutError(
            f"the graph has no '{LOGITS}' output (outputs: "
            f"{', '.join(a.output_names[:6])}{'...' if len(a.output_names) > 6 else ''}); "
            "expected the standard decoder layout of docs/model-format.md"
        )

    nodes = list(g.node)
    node_inputs = []
    for n in nodes:
        ins = [i for i in n.input if i]
        for sub in _subgraphs(n):
            ins += sorted(_outer_refs(sub))
        node_inputs.append(ins)

    # stable topological order (ONNX requires one, but do not trust it)
    available = set(a.input_names) | a.init_names | {i.name for i in g.input}
    producer_tmp = {}
    for idx, n in enumerate(nodes):
        for o in n.output:
            if o:
                if o in producer_tmp or o in available:
                    raise CutError(f"tensor '{o}' is defined twice (graph not in SSA form)")
                producer_tmp[o] = idx
    waiting = [0] * len(nodes)
    consumers: dict[str, list[int]] = {}
    for idx, ins in enumerate(node_inputs):
        deps = {i for i in ins if i in producer_tmp}
        waiting[idx] = len(deps)
        for d in deps:
            consumers.setdefault(d, []).append(idx)
    import heapq

    ready = [idx for idx in range(len(nodes)) if waiting[idx] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        idx = heapq.heappop(ready)
        order.append(idx)
        for o in {o for o in nodes[idx].output if o}:
            for c in consumers.get(o, ()):
                waiting[c] -= 1
                if waiting[c] == 0:
                    heapq.heappush(ready, c)
    if len(order) != len(nodes):
        raise CutError("the graph has a cycle")
    for idx, ins in enumerate(node_inputs):
        for i in ins:
            if i not in producer_tmp and i not in available:
                raise CutError(f"tensor '{i}' is used but never defined")

    a.nodes = [nodes[i] for i in order]
    a.node_inputs = [node_inputs[i] for i in order]
    for idx, n in enumerate(a.nodes):
        for o in n.output:
            if o:
                a.producer[o] = idx
    a.all_names = set(available) | set(a.producer)

    # value dependency on input_ids, preds/succs in the value graph
    a.vdep = {ROOT}
    a.topo = {ROOT: 0}
    for idx, n in enumerate(a.nodes):
        if n.op_type in SHAPE_OPS and n.domain in ("", "ai.onnx"):
            continue
        vins = [i for i in dict.fromkeys(a.node_inputs[idx]) if i in a.vdep]
        if not vins:
            continue
        for o in n.output:
            if o:
                a.vdep.add(o)
                a.preds[o] = vins
                a.topo[o] = len(a.topo)
                for i in vins:
                    a.succs.setdefault(i, []).append(o)

    # immediate dominators (DAG, topological order)
    a.idom = {ROOT: ROOT}
    for t in sorted(a.preds, key=a.topo.__getitem__):
        d = None
        for p in a.preds[t]:
            d = p if d is None else _intersect(a, d, p)
        a.idom[t] = d
    return a


def _intersect(a: Analysis, x: str, y: str) -> str:
    while x != y:
        while a.topo[x] > a.topo[y]:
            x = a.idom[x]
        while a.topo[y] > a.topo[x]:
            y = a.idom[y]
    return x


def _descendants(a: Analysis, t: str) -> set[str]:
    seen = {t}
    stack = [t]
    while stack:
        for s in a.succs.get(stack.pop(), ()):
            if s not in seen:
                seen.add(s)
                stack.append(s)
    return seen


def infer_shapes(model: onnx.ModelProto) -> dict:
    """name -> (elem_type, dims) via ONNX shape inference on a weight-less copy."""
    g = model.graph
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    lg = light.graph
    lg.name = g.name
    lg.node.extend(g.node)
    input_names = {i.name for i in g.input}
    lg.input.extend(g.input)
    lg.output.extend(g.output)
    lg.value_info.extend(g.value_info)
    for t in g.initializer:
        n_elems = 1
        for d in t.dims:
            n_elems *= d
        if n_elems <= 64:
            lg.initializer.append(t)
        elif t.name not in input_names:
            lg.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception as e:  # pragma: no cover - depends on exporter quirks
        log(f"warning: shape inference failed ({e}); shape checks are skipped")
        return {}
    out = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.output) + list(
        inferred.graph.value_info
    ):
        out[vi.name] = _dims_of(vi.type)
    return out


# --------------------------------------------------------------------------
# cuts


def layer_outputs(a: Analysis) -> dict[int, list[str]]:
    layers: dict[int, list[str]] = {}
    for name in a.output_names:
        m = PRESENT_RE.match(name)
        if m:
            layers.setdefault(int(m.group(1)), []).append(name)
    if not layers:
        raise CutError("the graph has no present.{l}.key|value outputs")
    n = len(layers)
    if sorted(layers) != list(range(n)):
        raise CutError(f"present.* layers are not 0..{n - 1}: {sorted(layers)}")
    for l, outs in layers.items():
        if sorted(o.rsplit(".", 1)[1] for o in outs) != ["key", "value"]:
            raise CutError(f"layer {l} does not have exactly present.{l}.key and .value")
    return layers


def split_layers(num_layers: int, n_stages: int) -> list[tuple[int, int]]:
    if not 1 <= n_stages <= num_layers:
        raise CutError(
            f"--stages must be between 1 and the number of layers ({num_layers}), got {n_stages}"
        )
    base, extra = divmod(num_layers, n_stages)
    ranges, start = [], 0
    for k in range(n_stages):
        end = start + base + (1 if k < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges


def find_cut(a: Analysis, layers: dict[int, list[str]], L: int) -> str:
    targets = [LOGITS] + [o for j in sorted(layers) if j >= L for o in layers[j]]
    if LOGITS not in a.vdep:
        raise CutError("'logits' does not depend on the values of input_ids")
    d = None
    for t in targets:
        if t not in a.vdep:
            continue
        d = t if d is None else _intersect(a, d, t)
    if d == ROOT:
        raise CutError(
            f"no single tensor separates layers < {L} from layers >= {L} "
            "(the only common dominator of the later outputs is input_ids)"
        )
    return d


def check_cut(a: Analysis, layers, L: int, cut: str, hidden_size: int) -> None:
    desc = _descendants(a, cut)
    for j in sorted(layers):
        if j >= L:
            continue
        for o in layers[j]:
            if o in desc:
                raise CutError(
                    f"cut before layer {L} ('{cut}') is not clean: {o} depends on it "
                    "(the early part would need the late part)"
                )
    if a.shapes:
        et, dims = a.shapes.get(cut, (None, None))
        if et is None:
            log(f"warning: no inferred type for cut tensor '{cut}'")
        elif et != TensorProto.FLOAT:
            raise CutError(
                f"cut before layer {L} ('{cut}') is {TensorProto.DataType.Name(et)}, expected FLOAT"
            )
        if dims is not None:
            if len(dims) != 3:
                raise CutError(
                    f"cut before layer {L} ('{cut}') has rank {len(dims)} (shape {dims}), "
                    "expected [batch, sequence, hidden]"
                )
            if isinstance(dims[2], int) and dims[2] != hidden_size:
                raise CutError(
                    f"cut before layer {L} ('{cut}') has last dim {dims[2]}, "
                    f"expected hidden_size {hidden_size}"
                )


# --------------------------------------------------------------------------
# extraction


class _Names:
    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


class ShapeOracle:
    """Tells whether an early tensor's shape is the cut's shape or a prefix of it.

    First from ONNX shape inference (symbolic dims).  Where that cannot tell
    (it loses symbols through broadcasts, e.g. of the attention bias), the
    source model is run once with onnxruntime on a few (batch, sequence,
    past) sizes with the tensors in question added as outputs, and the
    relation must hold for every run.
    """

    PROBES = ((2, 3, 5), (3, 4, 0), (1, 1, 2), (4, 2, 3))

    def __init__(self, a: Analysis, config: dict):
        self.a = a
        self.config = config
        self.wanted: set[str] = set()
        self.probed: dict[str, list[tuple]] = {}

    def _symbolic(self, x: str, cut: str):
        sx = self.a.shapes.get(x, (None, None))[1]
        sc = self.a.shapes.get(cut, (None, None))[1]
        if sx is None or sc is None or None in sx or None in sc:
            return None
        if len(sx) <= len(sc) and list(sc[: len(sx)]) == list(sx):
            return len(sx), len(sc)
        return None

    def want(self, x: str, cut: str) -> None:
        if self._symbolic(x, cut) is None:
            self.wanted.update((x, cut))

    def ranks(self, x: str, cut: str):
        """(rank of x, rank of cut) when shape(x) == shape(cut)[:rank x], else None."""
        r = self._symbolic(x, cut)
        if r is not None:
            return r
        px, pc = self.probed.get(x), self.probed.get(cut)
        if not px or not pc or len(px) != len(pc):
            return None
        if all(len(u) <= len(v) and v[: len(u)] == u for u, v in zip(px, pc)):
            return len(px[0]), len(pc[0])
        return None

    def probe(self) -> None:
        names = sorted(self.wanted - set(self.probed))
        if not names:
            return
        try:
            self.probed.update(_probe_shapes(self.a, names, self.config, self.PROBES))
        except Exception as e:  # onnxruntime missing, model too big, odd inputs
            log(f"warning: could not probe shapes with onnxruntime ({e})")


def _probe_shapes(a: Analysis, names: list[str], config: dict, probes) -> dict:
    import numpy as np
    import onnxruntime as ort

    g = a.model.graph
    n_out = len(g.output)
    for n in names:
        if n in a.output_names:
            continue
        et = a.shapes.get(n, (None, None))[0]
        g.output.append(
            helper.make_tensor_value_info(n, et, None) if et else helper.make_empty_tensor_value_info(n)
        )
    try:
        data = a.model.SerializeToString()
    finally:
        del g.output[n_out:]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    del data
    np_types = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    rng = np.random.default_rng(0)
    vocab = config.get("vocab_size") or 2
    out = {n: [] for n in names}
    for batch, seq, past in probes:
        feeds = {}
        for i in sess.get_inputs():
            dt = np_types[i.type]
            if i.name == ROOT:
                feeds[i.name] = rng.integers(0, vocab, size=(batch, seq)).astype(dt)
            elif i.name == "attention_mask":
                feeds[i.name] = np.ones((batch, past + seq), dtype=dt)
            elif i.name == "position_ids":
                feeds[i.name] = np.tile(np.arange(past, past + seq, dtype=dt), (batch, 1))
            elif PAST_RE.match(i.name):
                kv = i.shape[1] if isinstance(i.shape[1], int) else config["num_kv_heads"]
                hd = i.shape[3] if isinstance(i.shape[3], int) else config["head_dim"]
                feeds[i.name] = np.zeros((batch, kv, past, hd), dtype=dt)
            else:
                raise CutError(f"do not know how to feed input '{i.name}'")
        for n, v in zip(names, sess.run(names, feeds)):
            out[n].append(tuple(v.shape))
    return out


def _shape_subst(node, cut: str, r: int, rc: int, names: _Names, opset: int):
    """Nodes computing `node` (Shape/Size of an early tensor of rank r whose shape is
    the first r dims of the cut's) from the cut (rank rc)."""
    base = (node.name or node.output[0]) + "__from_hidden"
    out = node.output[0]
    if node.op_type == "Size":
        if r == rc:
            return [helper.make_node("Size", [cut], [out], name=base)]
        sh = names.fresh(out + "__hs_shape")
        nodes = _shape_slice(cut, sh, 0, r, base, names, opset)
        nodes.append(helper.make_node("ReduceProd", [sh], [out], name=base + "_prod", keepdims=0))
        return nodes
    attrs = {at.name: helper.get_attribute_value(at) for at in node.attribute}
    if r == rc and not attrs:
        return [helper.make_node("Shape", [cut], [out], name=base)]
    start = attrs.get("start", 0)
    end = attrs.get("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    return _shape_slice(cut, out, start, end, base, names, opset)


def _shape_slice(src, out, start, end, base, names: _Names, opset: int):
    """out = Shape(src)[start:end]."""
    if opset >= 15:
        return [helper.make_node("Shape", [src], [out], name=base, start=start, end=end)]
    sh = names.fresh(out + "__hs_full")
    consts = []
    for tag, val in (("start", start), ("end", end), ("axes", 0)):
        c = names.fresh(f"{out}__hs_{tag}")
        consts.append(c)
    nodes = [helper.make_node("Shape", [src], [sh], name=base)]
    for c, val in zip(consts, (start, end, 0)):
        nodes.append(helper.make_node(
            "Constant", [], [c], name=c, value=helper.make_tensor(c, TensorProto.INT64, [1], [val])))
    nodes.append(helper.make_node("Slice", [sh] + consts, [out], name=base + "_slice"))
    return nodes


def _default_opset(model) -> int:
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return op.version
    return 0


def _io_dims(vi: onnx.ValueInfoProto, k: int, default: str):
    _, dims = _dims_of(vi.type)
    if dims is not None and k < len(dims) and dims[k] is not None:
        return dims[k]
    return default


def _is_shape_op(node) -> bool:
    return node.op_type in SHAPE_OPS and node.domain in ("", "ai.onnx")


def build_stage(
    a: Analysis,
    index: int,
    layer_range: tuple[int, int],
    cut_in: str | None,
    cut_out: str | None,
    outputs: list[str],
    hidden_size: int,
    keep_all_inputs: bool,
    oracle: ShapeOracle,
    dry_run: bool = False,
):
    """Returns (ModelProto, input names, output names) of one stage.

    With dry_run, only walks the graph and tells the oracle which shapes it
    will be asked about (returns None)."""
    g = a.model.graph
    opset = _default_opset(a.model)
    start, end = layer_range
    early = (a.vdep - _descendants(a, cut_in)) if cut_in else set()
    late = (_descendants(a, cut_out) - {cut_out}) if cut_out else set()
    names = _Names(a.all_names | {HIDDEN_IN, HIDDEN_OUT})
    input_vi = {vi.name: vi for vi in g.input}

    def own_past(name: str):
        """A past input of this stage with the same declared shape as `name`."""
        m = PAST_RE.match(name)
        if not m or start <= int(m.group(1)) < end:
            return None
        cand = f"past_key_values.{start}.{m.group(2)}"
        if cand not in input_vi:
            return None
        d1, d2 = _dims_of(input_vi[name].type), _dims_of(input_vi[cand].type)
        if d1[0] != d2[0] or d1[1] is None or None in d1[1] or d1[1] != d2[1]:
            return None
        return cand

    included: set[int] = set()
    subst: dict[int, list] = {}
    used_inits: set[str] = set()
    used_inputs: set[str] = set()
    duplicated: set[str] = set()
    stack = list(reversed(outputs))
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if cut_in is not None and t == cut_in:
            continue
        if t in a.init_names:
            used_inits.add(t)
            continue
        if t not in a.producer:
            used_inputs.add(t)
            continue
        idx = a.producer[t]
        if idx in included or idx in subst:
            continue
        node = a.nodes[idx]
        if _is_shape_op(node):
            x = node.input[0]
            if cut_in is not None and x in early:
                if dry_run:
                    oracle.want(x, cut_in)
                    subst[idx] = []
                    continue
                ranks = oracle.ranks(x, cut_in)
                if ranks is not None:
                    subst[idx] = _shape_subst(node, cut_in, *ranks, names, opset)
                    stack.append(cut_in)
                    continue
                duplicated.add(x)
            mine = own_past(x)
            if mine is not None:
                repl = onnx.NodeProto()
                repl.CopyFrom(node)
                repl.input[0] = mine
                subst[idx] = [repl]
                stack.append(mine)
                continue
        included.add(idx)
        for i in a.node_inputs[idx]:
            if i not in seen:
                stack.append(i)
    if dry_run:
        return None

    # checks
    for idx in included:
        for o in a.nodes[idx].output:
            if o in late:
                raise CutError(
                    f"stage {index} would compute '{o}', which is downstream of its own "
                    f"output cut '{cut_out}'"
                )
    foreign = sorted(
        i for i in used_inputs
        if PAST_RE.match(i) and not start <= int(PAST_RE.match(i).group(1)) < end
    )
    if foreign:
        raise CutError(
            f"stage {index} (layers [{start}, {end})) needs {foreign[0]} of another stage"
        )
    if cut_in is not None:
        dup_nodes = [idx for idx in included if any(o in early for o in a.nodes[idx].output)]
        if dup_nodes:
            log(
                f"warning: stage {index} recomputes {len(dup_nodes)} node(s) of earlier stages "
                f"because it needs the shape of {sorted(duplicated)[:3]}, which could not be "
                "shown to match the hidden_states shape"
            )
        # outputs must not value-depend on input_ids except via hidden_states
        vd = {ROOT}
        for idx in sorted(included):
            n = a.nodes[idx]
            if _is_shape_op(n):
                continue
            if any(i in vd for i in a.node_inputs[idx]):
                vd.update(o for o in n.output if o)
        bad = [o for o in outputs if o in vd]
        if bad:
            raise CutError(f"stage {index} output {bad[0]} depends on input_ids other than via the cut")

    # renaming: cut tensors to the boundary names, clashing names out of the way
    rename: dict[str, str] = {}
    for reserved in (HIDDEN_IN, HIDDEN_OUT):
        if reserved in a.all_names and reserved not in (cut_in, cut_out):
            rename[reserved] = names.fresh(reserved + "__src")
    if cut_in is not None:
        rename[cut_in] = HIDDEN_IN
    if cut_out is not None:
        rename[cut_out] = HIDDEN_OUT

    stage_nodes = []
    for idx in range(len(a.nodes)):
        if idx in subst:
            stage_nodes.extend(subst[idx])
        elif idx in included:
            stage_nodes.append(a.nodes[idx])

    graph = onnx.GraphProto()
    graph.name = g.name or "main_graph"
    graph.doc_string = g.doc_string
    for n in stage_nodes:
        graph.node.add().CopyFrom(n)

    ids_vi = input_vi[ROOT]

    def hidden_vi(name):
        return helper.make_tensor_value_info(
            name,
            TensorProto.FLOAT,
            [_io_dims(ids_vi, 0, "batch_size"), _io_dims(ids_vi, 1, "sequence_length"), hidden_size],
        )

    in_names = []
    if cut_in is not None:
        graph.input.append(hidden_vi(cut_in))
        in_names.append(HIDDEN_IN)
    for vi in g.input:
        if vi.name in a.init_names:
            if vi.name in used_inits:
                graph.input.add().CopyFrom(vi)
            continue
        if keep_all_inputs or vi.name in used_inputs:
            graph.input.add().CopyFrom(vi)
            in_names.append(vi.name)

    out_names = []
    for o in outputs:
        if o == cut_out:
            graph.output.append(hidden_vi(o))
            out_names.append(HIDDEN_OUT)
        else:
            graph.output.add().CopyFrom(next(v for v in g.output if v.name == o))
            out_names.append(o)

    io = {vi.name for vi in graph.input} | {vi.name for vi in graph.output}
    produced = {o for n in stage_nodes for o in n.output if o}
    for vi in g.value_info:
        if vi.name in produced and vi.name not in io:
            graph.value_info.add().CopyFrom(vi)
    for t in g.initializer:
        if t.name in used_inits:
            graph.initializer.add().CopyFrom(t)
    for t in g.sparse_initializer:
        if t.values.name in used_inits:
            graph.sparse_initializer.add().CopyFrom(t)

    _rename_in_graph(graph, rename)

    m = onnx.ModelProto()
    m.ir_version = a.model.ir_version
    m.opset_import.extend(a.model.opset_import)
    m.producer_name = a.model.producer_name
    m.producer_version = a.model.producer_version
    m.domain = a.model.domain
    m.model_version = a.model.model_version
    m.doc_string = a.model.doc_string
    m.metadata_props.extend(a.model.metadata_props)
    m.functions.extend(a.model.functions)
    m.graph.CopyFrom(graph)
    return m, in_names, out_names


# --------------------------------------------------------------------------
# config, tokens, manifest


def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def normalise_config(cfg: dict) -> tuple[str, dict]:
    model_type = cfg.get("model_type")
    if not model_type:
        raise CutError("config.json has no model_type")
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    c = {**text, **{k: v for k, v in cfg.items() if k != "text_config"}}
    num_layers = _first(c, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _first(c, "hidden_size", "n_embd", "d_model")
    heads = _first(c, "num_attention_heads", "n_head", "num_heads")
    if num_layers is None or hidden is None or heads is None:
        raise CutError("config.json lacks the number of layers, hidden size or heads")
    kv = _first(c, "num_key_value_heads", "num_kv_heads", "n_kv_heads", default=heads)
    head_dim = _first(c, "head_dim", default=hidden // heads)
    inter = _first(c, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    rope = c.get("rope_parameters") if isinstance(c.get("rope_parameters"), dict) else {}
    rope_theta = _first(c, "rope_theta", default=rope.get("rope_theta"))
    if rope_theta is None and model_type not in NO_ROPE:
        rope_theta = 10000.0
    rms_eps = c.get("rms_norm_eps")
    ln_eps = _first(c, "layer_norm_epsilon", "layer_norm_eps")
    tie = c.get("tie_word_embeddings")
    if tie is None:
        tie = model_type not in UNTIED_BY_DEFAULT
    out = {
        "num_layers": int(num_layers),
        "hidden_size": int(hidden),
        "num_attention_heads": int(heads),
        "num_kv_heads": int(kv),
        "head_dim": int(head_dim),
        "intermediate_size": int(inter),
        "vocab_size": int(c["vocab_size"]) if c.get("vocab_size") is not None else None,
        "max_position_embeddings": _first(c, "max_position_embeddings", "n_positions", "n_ctx"),
        "rope_theta": float(rope_theta) if rope_theta is not None else None,
        "rms_norm_eps": float(rms_eps) if rms_eps is not None else None,
        "tie_word_embeddings": bool(tie),
    }
    if rms_eps is None and ln_eps is not None:
        out["layer_norm_eps"] = float(ln_eps)
    return model_type, out


def _token_text(tok) -> str | None:
    if tok is None:
        return None
    if isinstance(tok, dict):
        return tok.get("content")
    return str(tok)


class Vocab:
    def __init__(self, tokenizer: dict):
        self.by_text: dict[str, int] = {}
        self.by_id: dict[int, str] = {}
        model = tokenizer.get("model") or {}
        vocab = model.get("vocab")
        if isinstance(vocab, dict):
            for text, i in vocab.items():
                self.by_text[text] = int(i)
                self.by_id.setdefault(int(i), text)
        elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
            for i, entry in enumerate(vocab):
                text = entry[0] if isinstance(entry, list) else entry
                self.by_text.setdefault(text, i)
                self.by_id.setdefault(i, text)
        for t in tokenizer.get("added_tokens") or []:
            self.by_text[t["content"]] = int(t["id"])
            self.by_id[int(t["id"])] = t["content"]

    def by_token(self, text: str, what: str) -> dict:
        if text not in self.by_text:
            raise CutError(f"{what} token {text!r} is not in tokenizer.json")
        return {"id": self.by_text[text], "text": text}

    def by_index(self, i: int, what: str) -> dict:
        if int(i) not in self.by_id:
            raise CutError(f"{what} token id {i} is not in tokenizer.json")
        return {"id": int(i), "text": self.by_id[int(i)]}


def _ids(v) -> list[int]:
    if v is None:
        return []
    if isinstance(v, list):
        return [int(x) for x in v]
    return [int(v)]


def special_tokens(tokenizer: dict, tok_cfg: dict, gen_cfg: dict, cfg: dict) -> dict:
    vocab = Vocab(tokenizer)

    def single(what: str):
        text = _token_text(tok_cfg.get(f"{what}_token"))
        if text is not None:
            return vocab.by_token(text, what)
        for src in (gen_cfg, cfg):
            ids = _ids(src.get(f"{what}_token_id"))
            if ids:
                return vocab.by_index(ids[0], what)
        return None

    eos: list[dict] = []
    text = _token_text(tok_cfg.get("eos_token"))
    if text is not None:
        eos.append(vocab.by_token(text, "eos"))
    extra = _ids(gen_cfg.get("eos_token_id")) or _ids(cfg.get("eos_token_id"))
    for i in extra:
        if all(e["id"] != i for e in eos):
            eos.append(vocab.by_index(i, "eos"))
    return {"bos": single("bos"), "eos": eos, "pad": single("pad")}


def chat_template(source: Path, tok_cfg: dict) -> str | None:
    tpl = tok_cfg.get("chat_template")
    if isinstance(tpl, list):
        named = {t.get("name"): t.get("template") for t in tpl if isinstance(t, dict)}
        tpl = named.get("default", next(iter(named.values()), None))
    if tpl is None and (source / "chat_template.jinja").is_file():
        tpl = (source / "chat_template.jinja").read_text(encoding="utf-8")
    if tpl is None and (source / "chat_template.json").is_file():
        tpl = json.loads((source / "chat_template.json").read_text(encoding="utf-8")).get(
            "chat_template"
        )
    return tpl


def file_record(data: bytes, chunk_size: int) -> dict:
    chunks = []
    for off in range(0, len(data), chunk_size):
        part = data[off : off + chunk_size]
        chunks.append({"offset": off, "size": len(part), "sha256": hashlib.sha256(part).hexdigest()})
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "chunks": chunks}


def _load_json(path: Path, required: bool) -> dict:
    if not path.is_file():
        if required:
            raise CutError(f"missing {path}")
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def default_name(source: Path) -> str:
    source = source.resolve()
    return source.parent.name if source.name == "source" else source.name


# --------------------------------------------------------------------------
# main entry


def cut(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    n_stages: int,
    name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    check: bool = True,
) -> dict:
    source, out_dir = Path(source), Path(out_dir)
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CutError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE}, got {chunk_size}")
    cfg = _load_json(source / "config.json", True)
    tok_cfg = _load_json(source / "tokenizer_config.json", True)
    gen_cfg = _load_json(source / "generation_config.json", False)
    tok_path = source / "tokenizer.json"
    if not tok_path.is_file():
        raise CutError(f"missing {tok_path}")
    tok_bytes = tok_path.read_bytes()
    tokenizer = json.loads(tok_bytes)
    model_path = source / "model.onnx"
    if not model_path.is_file():
        raise CutError(f"missing {model_path}")

    architecture, config = normalise_config(cfg)
    specials = special_tokens(tokenizer, tok_cfg, gen_cfg, cfg)
    template = chat_template(source, tok_cfg)

    t0 = time.time()
    model = onnx.load(str(model_path), load_external_data=True)
    a = analyse(model)
    layers = layer_outputs(a)
    num_layers = len(layers)
    if num_layers != config["num_layers"]:
        raise CutError(
            f"the graph has {num_layers} layers of present.* outputs but config.json says "
            f"{config['num_layers']}"
        )
    ranges = split_layers(num_layers, n_stages)
    hidden = config["hidden_size"]
    cuts: list[str] = []
    if n_stages > 1:
        a.shapes = infer_shapes(model)
        for (start, _end) in ranges[1:]:
            c = find_cut(a, layers, start)
            check_cut(a, layers, start, c, hidden)
            if cuts and (c == cuts[-1] or c not in _descendants(a, cuts[-1])):
                raise CutError(
                    f"cuts are not ordered: '{c}' (before layer {start}) does not follow "
                    f"'{cuts[-1]}'"
                )
            cuts.append(c)
    log(f"analysed {len(a.nodes)} nodes, cuts: {cuts} ({time.time() - t0:.1f}s)")

    extra = [o for o in a.output_names if o != LOGITS and not PRESENT_RE.match(o)]
    if extra and n_stages > 1:
        log(f"warning: dropping non-standard outputs {extra}")

    out_dir.mkdir(parents=True, exist_ok=True)

    specs = []
    for k, (start, end) in enumerate(ranges):
        cut_in = cuts[k - 1] if k > 0 else None
        cut_out = cuts[k] if k < n_stages - 1 else None
        if n_stages == 1:
            outputs = list(a.output_names)
        else:
            outputs = [cut_out] if cut_out else [LOGITS]
            outputs += [o for o in a.output_names if PRESENT_RE.match(o)
                        and start <= int(PRESENT_RE.match(o).group(1)) < end]
        specs.append(dict(index=k, layer_range=(start, end), cut_in=cut_in, cut_out=cut_out,
                          outputs=outputs, hidden_size=hidden, keep_all_inputs=n_stages == 1))
    oracle = ShapeOracle(a, config)
    for spec in specs:
        build_stage(a, oracle=oracle, dry_run=True, **spec)
    if oracle.wanted:
        t1 = time.time()
        oracle.probe()
        log(f"probed {len(oracle.wanted)} tensor shape(s) with onnxruntime ({time.time() - t1:.1f}s)")

    stages = []
    for spec in specs:
        k = spec["index"]
        start, end = spec["layer_range"]
        m, ins, outs = build_stage(a, oracle=oracle, **spec)
        try:
            data = m.SerializeToString()
        except ValueError as e:  # protobuf's 2 GiB limit
            raise CutError(f"stage {k} cannot be serialised as one file ({e}); use more stages")
        del m
        fname = f"stage-{k}.onnx"
        path = out_dir / fname
        path.write_bytes(data)
        if check:
            onnx.checker.check_model(str(path))
        rec = {"index": k, "file": fname, "layer_start": start, "layer_end": end,
               "inputs": ins, "outputs": outs}
        rec.update(file_record(data, chunk_size))
        del data
        stages.append(rec)
        log(f"stage {k}: layers [{start}, {end}) {rec['size']} bytes")

    stage_files = {st["file"] for st in stages}
    for old in sorted(out_dir.glob("stage-*.onnx")):
        if old.name not in stage_files:
            old.unlink()
    shutil.copyfile(tok_path, out_dir / "tokenizer.json")
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name or default_name(source),
        "architecture": architecture,
        "config": config,
        "tokenizer": {
            "file": "tokenizer.json",
            "size": len(tok_bytes),
            "sha256": hashlib.sha256(tok_bytes).hexdigest(),
        },
        "special_tokens": specials,
        "chat_template": template,
        "chunk_size": chunk_size,
        "stages": stages,
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="source directory (model.onnx, config.json, tokenizer files)")
    p.add_argument("out", help="output directory")
    p.add_argument("--stages", type=int, required=True, help="number of stages (1..num_layers)")
    p.add_argument("--name", help="model name in the manifest (default: the model directory)")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help=f"chunk size in bytes (<= {MAX_CHUNK_SIZE}, default {DEFAULT_CHUNK_SIZE})")
    p.add_argument("--no-check", action="store_true", help="skip onnx.checker on the stages")
    args = p.parse_args(argv)
    t0 = time.time()
    try:
        cut(args.source, args.out, args.stages, name=args.name, chunk_size=args.chunk_size,
            check=not args.no_check)
    except CutError as e:
        print(f"cut_stages: error: {e}", file=sys.stderr)
        return 2
    log(f"done in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
