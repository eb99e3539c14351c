#!/usr/bin/python3
"""Checks a model graft exported against the model it came from, with the
onnx package only (independent of graft).

usage: check_export.py SOURCE EXPORTED [--no-identity] [--dynamic-batch] [--sha NAME=HEX]...

- onnx.checker.check_model(EXPORTED, full_check=True) passes;
- every initializer the source's nodes use is in the export, with equal
  numpy_helper.to_array values, bit for bit, and (when both are stored inline)
  an identical serialized TensorProto;
- ir_version, opset imports, metadata_props, doc strings, domain and
  model_version are kept; producer is graft;
- node names are unique and non-empty; the real inputs are the same names in
  the same order, each with the source's shape (with --dynamic-batch: a
  symbolic first dimension); outputs keep their names;
- IR < 4 lists every initializer in graph.input.
Prints OK or the first problem; exit status 0 or 1.
"""
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def used_names(graph, acc):
    for n in graph.node:
        acc.update(n.input)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                used_names(a.g, acc)
            for sg in a.graphs:
                used_names(sg, acc)
    return acc


def shape_dim(d):
    if d.HasField("dim_value"):
        return d.dim_value
    return d.dim_param if d.HasField("dim_param") else None


def main():
    args = sys.argv[1:]
    src_path, out_path = args[0], args[1]
    identity = "--no-identity" not in args
    dynamic_batch = "--dynamic-batch" in args
    shas = {}
    for i, a in enumerate(args):
        if a == "--sha":
            k, v = args[i + 1].split("=")
            shas[k] = v
    try:
        onnx.checker.check_model(out_path, full_check=True)
    except Exception as e:  # noqa: BLE001 - report whatever the checker says
        fail("checker: %s" % str(e).splitlines()[0])
    src = onnx.load(src_path)
    src_raw = {t.name: t for t in onnx.load(src_path, load_external_data=False).graph.initializer}
    out = onnx.load(out_path)
    out_raw = onnx.load(out_path, load_external_data=False)
    if out.ir_version != src.ir_version:
        fail("ir_version %d -> %d" % (src.ir_version, out.ir_version))
    so = sorted((o.domain if o.domain != "ai.onnx" else "", o.version) for o in src.opset_import)
    oo = sorted((o.domain if o.domain != "ai.onnx" else "", o.version) for o in out.opset_import)
    if so != oo:
        fail("opset_import %s -> %s" % (so, oo))
    smeta = {p.key: p.value for p in src.metadata_props}
    ometa = {p.key: p.value for p in out.metadata_props}
    for k, v in smeta.items():
        if ometa.get(k) != v:
            fail("metadata %s lost or changed" % k)
    for f in ("doc_string", "domain", "model_version"):
        if getattr(src, f) != getattr(out, f):
            fail("%s changed" % f)
    if src.graph.doc_string != out.graph.doc_string:
        fail("graph doc_string changed")
    if out.producer_name != "graft":
        fail("producer_name %r" % out.producer_name)
    names = [n.name for n in out.graph.node]
    if any(not n for n in names) or len(set(names)) != len(names):
        fail("node names not unique and non-empty")
    sinit = {t.name: t for t in src.graph.initializer}
    oinit = {t.name: t for t in out.graph.initializer}
    oinit_raw = {t.name: t for t in out_raw.graph.initializer}
    for name in used_names(src.graph, set()):
        if name not in sinit:
            continue
        if name not in oinit:
            fail("initializer %s missing" % name)
        a = numpy_helper.to_array(sinit[name])
        b = numpy_helper.to_array(oinit[name])
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            fail("initializer %s values differ" % name)
        inline = oinit_raw[name].data_location != onnx.TensorProto.EXTERNAL and \
            src_raw[name].data_location != onnx.TensorProto.EXTERNAL
        if identity and inline and \
                sinit[name].SerializeToString() != oinit_raw[name].SerializeToString():
            fail("initializer %s serialized bytes differ" % name)
    for k, v in shas.items():
        if hashlib.sha256(numpy_helper.to_array(oinit[k]).tobytes()).hexdigest() != v:
            fail("sha256 of %s differs" % k)
    for t in out_raw.graph.initializer:
        for e in t.external_data:
            if e.key == "location" and ("/" in e.value or "\\" in e.value or ".." in e.value):
                fail("external location %r is not a plain file name" % e.value)
    sreal = [i.name for i in src.graph.input if i.name not in sinit]
    oinputs = [i for i in out.graph.input if i.name not in oinit]
    if [i.name for i in oinputs] != sreal:
        fail("real inputs %s -> %s" % (sreal, [i.name for i in oinputs]))
    sinputs = {i.name: i for i in src.graph.input if i.name not in sinit}
    for i in oinputs:
        dims = i.type.tensor_type.shape.dim
        if dynamic_batch:
            if len(dims) and not dims[0].dim_param:
                fail("input %s dim 0 is not symbolic" % i.name)
            continue
        sdims = sinputs[i.name].type.tensor_type.shape.dim
        if [shape_dim(d) for d in dims] != [shape_dim(d) for d in sdims]:
            fail("input %s shape %s -> %s" % (i.name, [shape_dim(d) for d in sdims],
                                              [shape_dim(d) for d in dims]))
    if [o.name for o in src.graph.output] != [o.name for o in out.graph.output]:
        fail("outputs renamed")
    listed = {i.name for i in out.graph.input}
    if out.ir_version < 4 and not set(oinit) <= listed:
        fail("IR < 4 but initializers not listed as inputs")
    if out.ir_version >= 4 and set(oinit) & listed:
        fail("IR >= 4 but initializers listed as inputs")
    print("OK")


main()
