#!/usr/bin/python3
"""Writes the small ONNX models the tests/onnx programs import, with reference
values computed by onnx.numpy_helper (independent of graft).

usage: make_models.py OUT_DIR

For dtypes.onnx every initializer NAME also gets OUT_DIR/ref/NAME.f64 (float64
little-endian values, what graft's compute form must hold) so the C test can
compare without parsing protobuf itself.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(os.path.join(out, "ref"), exist_ok=True)
rng = np.random.default_rng(7)


def save(model, name):
    onnx.save(model, os.path.join(out, name))


def ref(name, arr):
    np.asarray(arr, dtype=np.float64).astype("<f8").tofile(os.path.join(out, "ref", name + ".f64"))


def typed_tensor(name, dtype, arr):
    """A TensorProto using the typed field the spec assigns to dtype."""
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(arr.shape)
    flat = arr.flatten()
    if dtype == TensorProto.FLOAT:
        t.float_data.extend(flat.tolist())
    elif dtype == TensorProto.DOUBLE:
        t.double_data.extend(flat.tolist())
    elif dtype == TensorProto.INT64:
        t.int64_data.extend(flat.tolist())
    elif dtype in (TensorProto.UINT32, TensorProto.UINT64):
        t.uint64_data.extend(flat.tolist())
    elif dtype in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        t.int32_data.extend(flat.view(np.uint16).astype(np.int32).tolist())
    else:
        t.int32_data.extend(flat.astype(np.int32).tolist())
    return t


def bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def dtypes_model():
    inits, outs, nodes = [], [], []
    shape = (2, 3)
    cases = [
        ("f32", TensorProto.FLOAT, rng.standard_normal(shape).astype(np.float32)),
        ("f64", TensorProto.DOUBLE, rng.standard_normal(shape)),
        ("f16", TensorProto.FLOAT16,
         np.array([[0.5, -0.0, 65504.0], [6e-8, -2.25, 1e-3]], np.float16)),
        ("i64", TensorProto.INT64, np.array([[1, -2, 3], [2**40, -(2**40), 0]], np.int64)),
        ("i32", TensorProto.INT32, np.array([[1, -2, 3], [2**30, -(2**30), 0]], np.int32)),
        ("i16", TensorProto.INT16, np.array([[1, -2, 3], [32767, -32768, 0]], np.int16)),
        ("u16", TensorProto.UINT16, np.array([[1, 2, 3], [65535, 0, 7]], np.uint16)),
        ("i8", TensorProto.INT8, np.array([[1, -2, 3], [127, -128, 0]], np.int8)),
        ("u8", TensorProto.UINT8, np.array([[1, 2, 3], [255, 0, 7]], np.uint8)),
        ("bool", TensorProto.BOOL, np.array([[True, False, True], [False, False, True]])),
        ("u32", TensorProto.UINT32, np.array([[1, 2, 3], [2**32 - 1, 0, 7]], np.uint32)),
        ("u64", TensorProto.UINT64, np.array([[1, 2, 3], [2**40, 0, 7]], np.uint64)),
    ]
    for tag, dt, arr in cases:
        raw = numpy_helper.from_array(arr, "raw_" + tag)
        typ = typed_tensor("typed_" + tag, dt, arr)
        for t in (raw, typ):
            inits.append(t)
            back = numpy_helper.to_array(t)
            assert np.array_equal(back, arr) or np.allclose(back, arr, equal_nan=True)
            ref(t.name, back.astype(np.float64))
    # bfloat16: numpy has no dtype; build raw and typed by hand
    vals = np.array([[1.0, -2.5, 3.140625], [0.0, -0.0, 1e-3]], np.float32)
    bits = bf16_bits(vals)
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    t = TensorProto(name="raw_bf16", data_type=TensorProto.BFLOAT16, dims=list(shape),
                    raw_data=bits.tobytes())
    inits.append(t)
    ref("raw_bf16", widened)
    t = TensorProto(name="typed_bf16", data_type=TensorProto.BFLOAT16, dims=list(shape))
    t.int32_data.extend(bits.flatten().astype(np.int32).tolist())
    inits.append(t)
    ref("typed_bf16", widened)
    # a scalar and an empty tensor
    inits.append(numpy_helper.from_array(np.array(4.5, np.float32), "scalar"))
    ref("scalar", np.array(4.5))
    inits.append(numpy_helper.from_array(np.zeros((0, 3), np.float32), "empty"))
    ref("empty", np.zeros((0, 3)))
    os.makedirs(os.path.join(out, "tensors"), exist_ok=True)
    for t in inits:
        with open(os.path.join(out, "tensors", t.name + ".pb"), "wb") as f:
            f.write(t.SerializeToString())
    for t in inits:
        o = t.name + "_out"
        nodes.append(helper.make_node("Identity", [t.name], [o]))
        outs.append(helper.make_tensor_value_info(o, t.data_type, list(t.dims)))
    g = helper.make_graph(nodes, "dtypes", [], outs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    save(m, "dtypes.onnx")


def small_graph(nodes, name="g", inits=()):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4])
    return helper.make_graph(nodes, name, [x], [y], initializer=list(inits))


def model(g, opset=13, ir=7):
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def cycle_model():
    nodes = [helper.make_node("Add", ["X", "C"], ["A"], name="a"),
             helper.make_node("Relu", ["A"], ["C"], name="b"),
             helper.make_node("Relu", ["A"], ["Y"], name="c")]
    save(model(small_graph(nodes)), "cycle.onnx")


def unsorted_model():
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W")
    nodes = [helper.make_node("Relu", ["T2"], ["Y"], name="last"),
             helper.make_node("Sigmoid", ["T1"], ["T2"], name="middle"),
             helper.make_node("MatMul", ["X", "W"], ["T1"], name="first")]
    save(model(small_graph(nodes, inits=[w])), "unsorted.onnx")


def attrs_model():
    then_g = helper.make_graph([helper.make_node("Identity", ["W"], ["o1"])], "then", [],
                               [helper.make_tensor_value_info("o1", TensorProto.FLOAT, [4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["W"], ["o2"])], "else", [],
                               [helper.make_tensor_value_info("o2", TensorProto.FLOAT, [4])])
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    cond = numpy_helper.from_array(np.array(True), "cond")
    t = numpy_helper.from_array(np.array([1.5, -2.0], np.float32), "tval")
    nodes = [
        helper.make_node("If", ["cond"], ["branch"], then_branch=then_g, else_branch=else_g,
                         name="if0"),
        helper.make_node("Custom", ["X", "branch"], ["Y"], domain="org.graft.test", name="c0",
                         f=0.25, i=-7, s="hello", t=t, fs=[1.0, 2.5], is_=[3, -4, 5],
                         ss=["a", "bc"]),
    ]
    # make_node mangles 'is_'? rename after the fact
    for a in nodes[1].attribute:
        if a.name == "is_":
            a.name = "is"
    g = small_graph(nodes, inits=[w, cond])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("org.graft.test", 1)])
    m.ir_version = 7
    save(m, "attrs.onnx")


def constant_model():
    c = helper.make_node("Constant", [], ["K"], name="k",
                         value=numpy_helper.from_array(np.array([1, 2, 3, 4], np.float32)))
    nodes = [c, helper.make_node("Add", ["X", "K"], ["Y"], name="add")]
    save(model(small_graph(nodes)), "constant.onnx")


def dup_init_model():
    w1 = numpy_helper.from_array(np.ones(4, np.float32), "W")
    w2 = numpy_helper.from_array(np.zeros(4, np.float32), "W")
    save(model(small_graph([helper.make_node("Add", ["X", "W"], ["Y"])], inits=[w1, w2])),
         "dup_init.onnx")


def meta_model():
    """Sorted graph with names, doc strings, metadata and unused value_info."""
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W")
    h = numpy_helper.from_array(rng.standard_normal((4,)).astype(np.float16), "H")
    unused = numpy_helper.from_array(np.ones(3, np.float32), "unused")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["T"], name="", doc_string="mm doc"),
             helper.make_node("Cast", ["H"], ["Hf"], to=TensorProto.FLOAT, name="dup"),
             helper.make_node("Add", ["T", "Hf"], ["Y"], name="dup")]
    g = small_graph(nodes, inits=[w, h, unused])
    g.doc_string = "graph doc"
    g.value_info.append(helper.make_tensor_value_info("T", TensorProto.FLOAT, ["N", 4]))
    g.value_info.append(helper.make_tensor_value_info("stale", TensorProto.FLOAT, [9]))
    m = model(g, opset=11, ir=6)
    m.doc_string = "model doc"
    m.domain = "org.example"
    m.model_version = 5
    helper.set_model_props(m, {"labels": "a,b", "k2": "v2"})
    save(m, "meta.onnx")


def half_model():
    """A mixed-precision graph: float16 input and weights (raw_data), bfloat16
    weights (int32_data), a float16 Constant, a double weight, Casts to and
    from float16, and float16/float32 outputs. half.x.bin holds one input
    (float32 values exactly representable in float16) and half.y*.bin the
    outputs computed here in float32 from the widened weights."""
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float16)
    w16 = np.array([[0.5, -0.25], [1.0, 2.0], [-1.5, 0.125]], np.float16)
    c16 = np.array([0.25, -0.5], np.float16)
    bits = bf16_bits(np.array([1.5, -2.0], np.float32))
    wbf = (bits.astype(np.uint32) << 16).view(np.float32)
    w64 = np.array([0.1, 3.0])
    tb = TensorProto(name="w_bf16", data_type=TensorProto.BFLOAT16, dims=[2])
    tb.int32_data.extend(bits.astype(np.int32).tolist())
    inits = [numpy_helper.from_array(w16, "w_f16"), tb, numpy_helper.from_array(w64, "w_f64")]
    nodes = [
        helper.make_node("MatMul", ["x", "w_f16"], ["mm"], name="mm"),
        helper.make_node("Constant", [], ["c"], name="c",
                         value=numpy_helper.from_array(c16, "c")),
        helper.make_node("Add", ["mm", "c"], ["h16"], name="add"),
        helper.make_node("Cast", ["h16"], ["h32"], name="to32", to=TensorProto.FLOAT),
        helper.make_node("Cast", ["w_bf16"], ["b32"], name="bf_to32", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["h32", "b32"], ["m32"], name="mul"),
        helper.make_node("Cast", ["w_f64"], ["d32"], name="d_to32", to=TensorProto.FLOAT),
        helper.make_node("Add", ["m32", "d32"], ["y32"], name="add2"),
        helper.make_node("Cast", ["y32"], ["y16"], name="to16", to=TensorProto.FLOAT16),
    ]
    g = helper.make_graph(
        nodes, "half", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 3])],
        [helper.make_tensor_value_info("y32", TensorProto.FLOAT, [2, 2]),
         helper.make_tensor_value_info("y16", TensorProto.FLOAT16, [2, 2])], initializer=inits)
    save(model(g, opset=13, ir=7), "half.onnx")
    y = ((x.astype(np.float32) @ w16.astype(np.float32)) + c16.astype(np.float32)) * wbf \
        + w64.astype(np.float32)
    x.astype("<f4").tofile(os.path.join(out, "half.x.bin"))
    y.astype("<f4").tofile(os.path.join(out, "half.y.bin"))


dtypes_model()
half_model()
cycle_model()
unsorted_model()
attrs_model()
constant_model()
dup_init_model()
meta_model()
