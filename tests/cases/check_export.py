#!/usr/bin/python3
"""Checks an ONNX file graft exported, with the onnx package (independent of graft).

    check_export.py CHECK MODEL [ARGS...]

Prints one line per failed expectation and exits 1 if any failed, 0 otherwise.
Checks (see each function): checker, sha, inputs_rule, topo, names, no_training,
b30, b31, b32, b33, b34_plain, b34_rehead, symbolic_batch, fixed_batch1,
locations, e02, same, keeps, backbone_same, no_dead_inits, float32.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

failures = []


def check(cond, what):
    if not cond:
        print("FAIL  " + what)
        failures.append(what)
    return cond


def load(path):
    return onnx.load(path, load_external_data=True)


def raw_bytes(t, base):
    """The stored little-endian bytes of an initializer (external data read from base)."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        kv = {e.key: e.value for e in t.external_data}
        with open(os.path.join(base, kv["location"]), "rb") as f:
            f.seek(int(kv.get("offset", "0")))
            return f.read(int(kv["length"])) if "length" in kv else f.read()
    if t.raw_data:
        return t.raw_data
    return numpy_helper.to_array(t).tobytes()


def inits(m):
    return {t.name: t for t in m.graph.initializer}


def c_checker(path):
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
        check(False, "onnx.checker full_check: %s" % str(e).splitlines()[0][:300])


def c_sha(path, js):
    m = onnx.load(path, load_external_data=False)
    base = os.path.dirname(os.path.abspath(path))
    want = json.load(open(js))
    have = inits(m)
    for name, sha in want.items():
        if name == "note":
            continue
        if check(name in have, "backbone initializer %s missing from the export" % name):
            got = hashlib.sha256(raw_bytes(have[name], base)).hexdigest()
            check(got == sha, "initializer %s bytes changed (sha256 %s, want %s)" % (name, got[:16], sha[:16]))


def c_inputs_rule(path):
    m = load(path)
    names_in = {i.name: i for i in m.graph.input}
    for t in m.graph.initializer:
        if m.ir_version < 4:
            if check(t.name in names_in, "IR %d: initializer %s not listed in graph.input" % (m.ir_version, t.name)):
                tt = names_in[t.name].type.tensor_type
                check(tt.elem_type == t.data_type, "IR<4: graph.input %s has type %d, initializer %d"
                      % (t.name, tt.elem_type, t.data_type))
                dims = [d.dim_value for d in tt.shape.dim]
                check(dims == list(t.dims), "IR<4: graph.input %s shape %s, initializer %s"
                      % (t.name, dims, list(t.dims)))
        else:
            check(t.name not in names_in, "IR %d: initializer %s also written in graph.input" % (m.ir_version, t.name))


def c_topo(path):
    m = onnx.load(path, load_external_data=False)
    known = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer} | {""}
    for n in m.graph.node:
        for i in n.input:
            check(i in known, "node %s (%s) reads %s before it is produced" % (n.name, n.op_type, i))
        known |= set(n.output)


def c_names(path):
    m = onnx.load(path, load_external_data=False)
    names = [n.name for n in m.graph.node]
    check(all(names), "exported nodes with empty names: %d" % sum(1 for n in names if not n))
    check(len(set(names)) == len(names), "exported node names not unique: %s" % names)


def attr(n, name, default=None):
    for a in n.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def c_no_training(path):
    m = onnx.load(path, load_external_data=False)
    inits_ = inits(m)
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            check(attr(n, "training_mode", 0) == 0, "BatchNormalization %s has training_mode=1" % n.name)
            check(len([o for o in n.output if o]) == 1, "BatchNormalization %s keeps running-stat outputs %s"
                  % (n.name, list(n.output)))
        if n.op_type == "Dropout" and len(n.input) > 2 and n.input[2]:
            t = inits_.get(n.input[2])
            val = bool(numpy_helper.to_array(t)) if t is not None else True
            check(not val, "Dropout %s keeps training_mode=true" % n.name)


def sym(d):
    return d.HasField("dim_param") and d.dim_param != "" or (not d.HasField("dim_value"))


def c_b30(path, n_classes):
    n_classes = int(n_classes)
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    init_names = {t.name for t in g.initializer}
    real = [i for i in g.input if i.name not in init_names]
    if check(len(real) == 1, "want exactly one data input, got %s" % [i.name for i in real]):
        x = real[0]
        check(x.name == "X", "input is %s, want X" % x.name)
        tt = x.type.tensor_type
        check(tt.elem_type == onnx.TensorProto.FLOAT, "input X is not float")
        dims = tt.shape.dim
        check(len(dims) == 2 and sym(dims[0]) and dims[1].dim_value == 4,
              "input X dims %s, want [N,4] with N symbolic" % dims)
    check(not any("label" in i.name.lower() for i in g.input), "a labels input is exported")
    if check(len(g.output) == 1, "want exactly one output, got %s" % [o.name for o in g.output]):
        d = g.output[0].type.tensor_type.shape.dim
        check(len(d) == 2 and sym(d[0]) and d[1].dim_value == n_classes,
              "output %s dims %s, want [N,%d]" % (g.output[0].name, d, n_classes))
    bad = [n.op_type for n in g.node if "Loss" in n.op_type or "Grad" in n.op_type
           or n.op_type in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")]
    check(not bad, "training-only nodes exported: %s" % bad)
    for n in g.node:
        if n.op_type == "Gemm":
            for i in n.input[1:]:
                check(i in init_names, "Gemm %s operand %s is not an initializer" % (n.name, i))


def c_b31(path, sha):
    d = os.path.dirname(os.path.abspath(path))
    files = sorted(os.listdir(d))
    others = [f for f in files if f != os.path.basename(path)]
    check(len(others) == 1, "output dir holds %s besides the model, want exactly one data file" % others)
    m = onnx.load(path, load_external_data=False)
    t = inits(m).get("W1")
    if not check(t is not None, "W1 missing"):
        return
    check(t.data_location == onnx.TensorProto.EXTERNAL, "W1 is not stored as external data")
    if t.data_location == onnx.TensorProto.EXTERNAL:
        kv = {e.key: e.value for e in t.external_data}
        loc = kv.get("location", "")
        check(loc and "/" not in loc and "\\" not in loc and ".." not in loc, "W1 location %r not a plain name" % loc)
        p = os.path.join(d, loc)
        if check(os.path.isfile(p), "W1 data file %s missing" % loc):
            size = os.path.getsize(p)
            off = int(kv.get("offset", "0"))
            ln = int(kv.get("length", str(size - off)))
            check(0 <= off and off + ln <= size, "W1 range %d+%d outside the %d-byte file" % (off, ln, size))
            check(ln == 300 * 1024 * 4, "W1 length %d" % ln)
    got = hashlib.sha256(raw_bytes(t, d)).hexdigest()
    check(got == sha, "W1 bytes sha256 %s, want %s" % (got[:16], sha[:16]))
    c_checker(path)


def c_b32(path):
    m = onnx.load(path, load_external_data=False)
    check(m.ir_version == 6, "ir_version %d, want 6" % m.ir_version)
    ops = [(o.domain, o.version) for o in m.opset_import]
    check(ops == [("", 11)], "opset_import %s, want [('', 11)]" % ops)


def c_b33(path):
    m = onnx.load(path, load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    for k, v in {"labels": "cat,dog", "mean": "0.5", "std": "0.25", "source": "cases-gen B33"}.items():
        check(meta.get(k) == v, "metadata %s = %r, want %r" % (k, meta.get(k), v))
    check(m.doc_string == "B33 model doc string", "model doc_string %r" % m.doc_string)
    check(m.graph.doc_string == "B33 graph doc string", "graph doc_string %r" % m.graph.doc_string)
    check(m.domain == "org.example.cases", "domain %r" % m.domain)
    check(m.model_version == 42, "model_version %d" % m.model_version)
    xs = [i for i in m.graph.input if i.name == "X"]
    check(xs and xs[0].doc_string == "normalized rgb", "input X doc_string %r" % (xs[0].doc_string if xs else None))
    check(m.producer_name == "graft", "producer_name %r, want graft" % m.producer_name)
    check(m.producer_version != "", "producer_version empty")


E_SHA = None


def c_b34_plain(path, orig):
    m = onnx.load(path, load_external_data=False)
    o = onnx.load(orig)
    e = numpy_helper.to_array(inits(o)["E"]).tobytes()
    holders = [t.name for t in m.graph.initializer if raw_bytes(t, os.path.dirname(path)) == e]
    check(len(holders) == 1, "initializers holding E's bytes: %s, want exactly one" % holders)
    if holders:
        users = sorted(n.op_type for n in m.graph.node if holders[0] in n.input)
        check(users == ["Gather", "Gemm"], "E consumed by %s, want Gather and Gemm" % users)
    size = os.path.getsize(path)
    check(size < 1.5 * len(e), "file is %d bytes for E of %d bytes (a second copy?)" % (size, len(e)))


def c_b34_rehead(path, orig):
    m = onnx.load(path, load_external_data=False)
    o = onnx.load(orig)
    e = numpy_helper.to_array(inits(o)["E"]).tobytes()
    holders = [t.name for t in m.graph.initializer if raw_bytes(t, os.path.dirname(path)) == e]
    check(holders == ["E"], "initializers holding E's bytes: %s, want ['E']" % holders)
    users = sorted(n.op_type for n in m.graph.node if "E" in n.input)
    check(users == ["Gather"], "E consumed by %s, want only Gather (tied Gemm removed)" % users)
    c_checker(path)


def c_symbolic_batch(path):
    m = onnx.load(path, load_external_data=False)
    init_names = {t.name for t in m.graph.initializer}
    for v in [i for i in m.graph.input if i.name not in init_names] + list(m.graph.output):
        d = v.type.tensor_type.shape.dim
        check(len(d) > 0 and d[0].dim_param != "",
              "%s dim 0 is %s, want a symbolic dim_param" % (v.name, d[0] if d else None))


def c_fixed_batch1(path):
    m = onnx.load(path, load_external_data=False)
    xs = [i for i in m.graph.input if i.name == "X"]
    if check(xs, "input X missing"):
        d = [x.dim_value if x.HasField("dim_value") else x.dim_param for x in xs[0].type.tensor_type.shape.dim]
        check(d == [1, 3, 4, 4], "X dims %s, want [1,3,4,4] (no batch relaxation was asked for)" % d)


def c_locations(path):
    d = os.path.dirname(os.path.abspath(path))
    m = onnx.load(path, load_external_data=False)
    n = 0
    for t in m.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        n += 1
        loc = {e.key: e.value for e in t.external_data}.get("location", "")
        check(loc and "/" not in loc and "\\" not in loc and ".." not in loc and "\0" not in loc,
              "%s: location %r is not a plain relative name" % (t.name, loc))
        p = os.path.join(d, loc)
        check(os.path.isfile(p) and not os.path.islink(p), "%s: data file %s is not a regular file" % (t.name, loc))
    print("external tensors: %d" % n)


def c_e02(path):
    m = onnx.load(path, load_external_data=False)
    it = inits(m)
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = it.get(n.input[1])
            if check(w is not None, "Conv %s weight not an initializer" % n.name):
                check(list(w.dims)[1] == 1, "Conv %s weight %s is not (M,1,k,k)" % (n.name, list(w.dims)))
            check(attr(n, "group") == 4, "Conv %s group %s, want 4" % (n.name, attr(n, "group")))


def attrs_of(n):
    out = {}
    for a in n.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = ("T", v.data_type, tuple(v.dims), numpy_helper.to_array(v).tobytes())
        elif isinstance(v, onnx.GraphProto):
            v = v.SerializeToString()
        elif isinstance(v, list):
            v = tuple(v)
        out[a.name] = v
    return out


def c_same(path, orig):
    """Round trip: same nodes, inputs, outputs and bit-identical initializers."""
    a = onnx.load(orig)
    b = onnx.load(path)
    ga, gb = a.graph, b.graph
    check([(n.op_type, n.domain, list(n.input), list(n.output)) for n in ga.node]
          == [(n.op_type, n.domain, list(n.input), list(n.output)) for n in gb.node],
          "node lists differ (op types, inputs or outputs)")
    for na, nb in zip(ga.node, gb.node):
        check(attrs_of(na) == attrs_of(nb), "node %s/%s attributes differ" % (na.name, nb.name))
    ia, ib = inits(a), inits(b)
    check(sorted(ia) == sorted(ib), "initializer names differ: %s" % sorted(set(ia) ^ set(ib)))
    for k in ia:
        if k in ib:
            x, y = numpy_helper.to_array(ia[k]), numpy_helper.to_array(ib[k])
            check(ia[k].data_type == ib[k].data_type and x.shape == y.shape and x.tobytes() == y.tobytes(),
                  "initializer %s not bit-identical" % k)
    ra = [i.name for i in ga.input if i.name not in ia]
    rb = [i.name for i in gb.input if i.name not in ib]
    check(ra == rb, "real inputs %s vs %s" % (ra, rb))
    check([o.name for o in ga.output] == [o.name for o in gb.output], "outputs differ")
    for x, y in zip(list(ga.input) + list(ga.output), list(gb.input) + list(gb.output)):
        if x.name == y.name:
            check(x.type.tensor_type.elem_type == y.type.tensor_type.elem_type, "%s element type differs" % x.name)


def c_keeps(path, orig, *names):
    """Each named initializer of orig is in the export with the same bytes."""
    a = onnx.load(orig)
    b = onnx.load(path, load_external_data=False)
    ib = inits(b)
    for k in names:
        ta = inits(a).get(k)
        if check(k in ib, "initializer %s missing from the export" % k) and ta is not None:
            check(raw_bytes(ib[k], os.path.dirname(os.path.abspath(path))) == numpy_helper.to_array(ta).tobytes(),
                  "initializer %s bytes changed" % k)


def read_names(graph):
    names = set()
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:  # outer-scope reads of subgraphs
            for sg in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                names |= read_names(sg)
    return names


def c_no_dead_inits(path, orig):
    """Every initializer of the export is read by a node, or was unread in orig too."""
    a = onnx.load(orig, load_external_data=False)
    b = onnx.load(path, load_external_data=False)
    unread_before = {t.name for t in a.graph.initializer} - read_names(a.graph)
    outputs = {o.name for o in b.graph.output}
    dead = [t.name for t in b.graph.initializer
            if t.name not in read_names(b.graph) and t.name not in unread_before
            and t.name not in outputs]
    check(not dead, "initializers no node reads any more: %s" % dead[:10])


def c_backbone_same(path, orig, min_count="1"):
    """Every initializer the export shares with orig is bit-identical and of the same type."""
    a = onnx.load(orig)
    b = onnx.load(path)
    ia, ib = inits(a), inits(b)
    common = [k for k in ib if k in ia]
    check(len(common) >= int(min_count), "only %d backbone initializers kept, want >= %s" % (len(common), min_count))
    for k in common:
        x, y = numpy_helper.to_array(ia[k]), numpy_helper.to_array(ib[k])
        check(ia[k].data_type == ib[k].data_type and x.shape == y.shape and x.tobytes() == y.tobytes(),
              "backbone initializer %s changed" % k)
    print("backbone initializers kept bit-identical: %d" % len(common))


NARROW_OR_DOUBLE = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)


def type_name(t):
    return onnx.TensorProto.DataType.Name(t)


def float32_of(t):
    """float32 values of a float16/bfloat16/double TensorProto, decoded here (onnx 1.12's
    numpy_helper has no bfloat16)."""
    if t.data_type == onnx.TensorProto.BFLOAT16:
        if t.raw_data:
            bits = np.frombuffer(t.raw_data, "<u2")
        else:
            bits = np.array(t.int32_data, np.uint32).astype(np.uint16)
        return (bits.astype(np.uint32) << 16).view(np.float32).reshape(tuple(t.dims))
    return numpy_helper.to_array(t).astype(np.float32)


def c_float32(path, orig):
    """graft's float32 export of orig: passes the checker; no float16, bfloat16 or double
    left in initializers, tensor attributes, graph inputs/outputs or Cast/generator target
    types; every initializer shared with orig holds orig's values as float32 (exact for
    float16 and bfloat16; nearest for double) or, when not floating, the same bytes."""
    c_checker(path)
    b = load(path)
    g = b.graph
    for t in g.initializer:
        check(t.data_type not in NARROW_OR_DOUBLE,
              "initializer %s is %s" % (t.name, type_name(t.data_type)))
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        et = vi.type.tensor_type.elem_type
        check(et not in NARROW_OR_DOUBLE, "%s is declared %s" % (vi.name, type_name(et)))
    for n in g.node:
        for at in n.attribute:
            if at.type == onnx.AttributeProto.TENSOR:
                check(at.t.data_type not in NARROW_OR_DOUBLE, "attribute %s of %s is %s"
                      % (at.name, n.name, type_name(at.t.data_type)))
            if at.type == onnx.AttributeProto.INT and at.name in ("to", "dtype"):
                check(at.i not in NARROW_OR_DOUBLE,
                      "%s %s has %s=%s" % (n.op_type, n.name, at.name, type_name(at.i)))
    ia, ib = inits(load(orig)), inits(b)
    common = [k for k in ib if k in ia]
    widened = 0
    for k in common:
        y = numpy_helper.to_array(ib[k])
        if ia[k].data_type in NARROW_OR_DOUBLE:
            x = float32_of(ia[k])
            widened += 1
        else:
            x = numpy_helper.to_array(ia[k])
        check(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(),
              "initializer %s: not the source's values in float32" % k)
    print("float32 export: %d initializers kept, %d widened" % (len(common), widened))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    fn = globals().get("c_" + sys.argv[1])
    if not fn:
        print("unknown check " + sys.argv[1])
        return 2
    try:
        fn(*sys.argv[2:])
    except Exception as e:  # noqa: BLE001 - an unreadable export is a failure
        check(False, "%s: %s: %s" % (sys.argv[1], type(e).__name__, str(e).splitlines()[0][:300] if str(e) else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
