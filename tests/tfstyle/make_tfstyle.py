#!/usr/bin/python3
"""Builds small TensorFlow-style CNN classifiers as tf2onnx writes them, with references.

    /usr/bin/python3 tests/tfstyle/make_tfstyle.py OUT_DIR [MODEL ...] [--ort-dir DIR] [--list]

Each MODEL (default: all, see --list) is written to OUT_DIR/<MODEL>/:
  model.onnx                  the graph (random weights from a fixed seed), passing
                              onnx.checker.check_model(full_check=True)
  test_data_set_K/input_0.pb  fixed inputs, NHWC, seeded (uniform -1..1; 0..255 pixels
                              for the models that rescale them)
  test_data_set_K/output_0.pb the reference softmax output, computed here in float64
                              by a numpy evaluator of the graph (independent of graft)
  test_data_set_K/features.pb the same evaluator's value of the feature tensor (the
                              automatic cut) and logits.pb of the final Add, the softmax's
                              input: a near-uniform softmax would hide small errors
  info.json                   the opset, the feature tensor the automatic cut should
                              pick and its width, whether ONNX Runtime agreed, and this
                              script's hash (a folder with the same hash is kept)

When node and onnxruntime-node are found (--ort-dir, else $GRAFT_ORT_DIR: a folder
holding node_modules/onnxruntime-node), ONNX Runtime runs every data set through
tests/e2e/ort_run.js too and must agree with the numpy reference within
1e-5 * max|ref|, so a mistake in either evaluator cannot become the reference.

What tf2onnx writes, and these graphs copy (compare ../shared/models/bodypix-*):
  - an NHWC float input whose batch is a symbolic dim named "unk__<n>" (and, for the
    dynhw models, height and width too), then Transpose(perm [0,3,1,2]) into NCHW;
  - Keras ZeroPadding2D / explicit "SAME" padding as a Pad node before a Conv with
    zero pads (opset >= 11: pads an int64 initializer; opset 10: the pads attribute),
    or auto_pad SAME_UPPER where the spatial size is unknown;
  - Conv with the bias (BiasAdd) fused; BatchNormalization folded into it, or left
    as a node after a bias-less conv; depthwise conv as Conv with group = channels;
  - Relu, and Relu6 as Clip (opset >= 11: min/max initializer inputs; opset 10:
    attributes); MaxPool;
  - Keras Flatten: a Transpose back to NHWC and a Reshape to [-1, K] (a constant
    shape), or with a symbolic size the shape computed from the tensor,
    Shape -> Gather(0) -> Unsqueeze -> Concat(.., [-1]) -> Reshape (Unsqueeze's axes
    an attribute before opset 13, an input from 13), or in int32 with Cast, Slice
    and Squeeze as older tf2onnx writes it;
  - Keras GlobalAveragePooling2D as ReduceMean (keepdims on NCHW + Flatten, or a
    Transpose back to NHWC + ReduceMean over [1, 2]);
  - Keras Dense as MatMul + Add (never Gemm), Softmax at the end (behind a
    SavedModel's output Identity in one);
  - constant folding off (unfolded-*): HWIO weights through Identity + Transpose
    nodes, TF1's unfused batch norm as Mul + Add; a uint8 image input + Cast
    (uint8-*); swish and squeeze-excite (effnet-*);
  - TF names: "model/conv2d/BiasAdd:0", "StatefulPartitionedCall/...", "Conv__253",
    "const_fold_opt__348", outputs named after the Keras layer.

Exit status: 0 every model written or kept, 77 python3-onnx / numpy missing, 1 an
error (a checker failure, ONNX Runtime disagreeing), 2 a bad command line.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - the CTest fixture turns this into a skip
    print(f"SKIP: {e} (Debian: python3-onnx python3-numpy)")
    sys.exit(77)


class TFGraph:
    """A graph under construction, named the way tf2onnx names things."""

    def __init__(self, opset, seed):
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.uid = 100  # tf2onnx's __<n> suffixes

    def fresh(self, base):
        self.uid += 1
        return f"{base}__{self.uid}"

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, name, values):
        return self.const(name, np.asarray(values, dtype=np.int64))

    def node(self, op, inputs, name, out=None, **attrs):
        out = out or f"{name}:0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    # -- layers ------------------------------------------------------------
    def weights(self, cout, cin_per_group, k):
        fan_in = cin_per_group * k * k
        return (self.rng.standard_normal((cout, cin_per_group, k, k)) *
                np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bias(self, n):
        return (self.rng.standard_normal(n) * 0.1).astype(np.float32)

    def pad(self, x, scope, begin, end, value_input=False):
        """Keras ZeroPadding2D on NCHW: pads [0,0,t,l, 0,0,b,r]; value_input: tf.pad's
        PadV2 form, the constant as a third input."""
        pads = [0, 0, begin, begin, 0, 0, end, end]
        name = f"{scope}/Pad"
        if self.opset >= 11:
            ins = [x, self.ints(self.fresh("const_fold_opt"), pads)]
            if value_input:
                ins.append(self.const(f"{scope}/Pad/constant_values:0", np.array(0, np.float32)))
            return self.node("Pad", ins, name, mode="constant")
        return self.node("Pad", [x], name, mode="constant", pads=pads, value=0.0)

    def conv(self, x, scope, cin, cout, k, stride=1, group=1, bias=True, auto_pad=None):
        w = self.const(f"{scope}/Conv2D/ReadVariableOp:0", self.weights(cout, cin // group, k))
        ins = [x, w]
        if bias:
            ins.append(self.const(f"{scope}/BiasAdd/ReadVariableOp:0", self.bias(cout)))
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], dilations=[1, 1])
        if group != 1:
            attrs["group"] = group
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = [0, 0, 0, 0]
        return self.node("Conv", ins, f"{scope}/BiasAdd" if bias else f"{scope}/Conv2D", **attrs)

    def batchnorm(self, x, scope, c):
        r = self.rng
        p = [self.const(f"{scope}/ReadVariableOp:0", (r.random(c) + 0.5).astype(np.float32)),
             self.const(f"{scope}/ReadVariableOp_1:0", (r.standard_normal(c) * 0.1).astype(np.float32)),
             self.const(f"{scope}/FusedBatchNormV3/ReadVariableOp:0",
                        (r.standard_normal(c) * 0.2).astype(np.float32)),
             self.const(f"{scope}/FusedBatchNormV3/ReadVariableOp_1:0",
                        (r.random(c) + 0.5).astype(np.float32))]
        return self.node("BatchNormalization", [x] + p, f"{scope}/FusedBatchNormV3",
                         epsilon=0.001)

    def relu(self, x, scope):
        return self.node("Relu", [x], f"{scope}/Relu")

    def relu6(self, x, scope):
        name = f"{scope}/Relu6"
        if self.opset >= 11:
            lo = self.const(self.fresh(name), np.array(0, dtype=np.float32))
            hi = self.const(self.fresh(name), np.array(6, dtype=np.float32))
            return self.node("Clip", [x, lo, hi], name)
        return self.node("Clip", [x], name, min=0.0, max=6.0)

    def maxpool(self, x, scope, k=2, auto_pad=None):
        attrs = dict(kernel_shape=[k, k], strides=[2, 2])
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        return self.node("MaxPool", [x], f"{scope}/MaxPool", **attrs)

    def rescaling(self, x, scope, scale, offset):
        """Keras Rescaling, on the NHWC input before the first Transpose."""
        x = self.node("Mul", [x, self.const(f"{scope}/Cast:0", np.array(scale, np.float32))],
                      f"{scope}/mul")
        return self.node("Add", [x, self.const(f"{scope}/Cast_1:0", np.array(offset, np.float32))],
                         f"{scope}/add")

    def axes(self, op, x, name, axes):
        if self.opset >= 13:
            return self.node(op, [x, self.ints(self.fresh("const_axes"), axes)], name)
        return self.node(op, [x], name, axes=axes)

    def to_nhwc(self, x, scope):
        return self.node("Transpose", [x], self.fresh(scope), perm=[0, 2, 3, 1])

    def flatten_const(self, x, scope, k):
        return self.node("Reshape", [x, self.ints(f"{scope}/Const:0", [-1, k])], f"{scope}/Reshape")

    def flatten_computed(self, x, scope):
        """What tf2onnx writes for Keras Flatten when the batch (or more) is symbolic."""
        s = self.node("Shape", [x], f"{scope}/Shape")
        b = self.node("Gather", [s, self.ints(f"{scope}/strided_slice/stack:0", 0)],
                      f"{scope}/strided_slice", axis=0)
        u = self.axes("Unsqueeze", b, self.fresh(f"{scope}/Reshape/shape"), [0])
        shape = self.node("Concat", [u, self.ints(f"{scope}/Reshape/shape/1:0", [-1])],
                          f"{scope}/Reshape/shape", axis=0)
        return self.node("Reshape", [x, shape], f"{scope}/Reshape")

    def flatten_computed_int32(self, x, scope):
        """The same as older tf2onnx writes it: TF's Shape is int32, so Shape -> Cast
        int32 -> StridedSlice (Slice + Squeeze) -> Pack (Unsqueeze + Concat with an
        int32 -1) -> Cast int64 -> Reshape."""
        s = self.node("Shape", [x], self.fresh(f"{scope}/Shape"))
        s = self.node("Cast", [s], f"{scope}/Shape", to=TensorProto.INT32)
        b = self.node("Slice", [s, self.ints(f"{scope}/strided_slice/stack:0", [0]),
                                self.ints(f"{scope}/strided_slice/stack_1:0", [1]),
                                self.ints(self.fresh("const_axes"), [0])],
                      self.fresh(f"{scope}/strided_slice"))
        b = self.axes("Squeeze", b, f"{scope}/strided_slice", [0])
        u = self.axes("Unsqueeze", b, self.fresh(f"{scope}/Reshape/shape"), [0])
        m1 = self.const(f"{scope}/Reshape/shape/1:0", np.array([-1], np.int32))
        shape = self.node("Concat", [u, m1], f"{scope}/Reshape/shape", axis=0)
        shape = self.node("Cast", [shape], self.fresh(f"{scope}/Reshape"), to=TensorProto.INT64)
        return self.node("Reshape", [x, shape], f"{scope}/Reshape")

    def batchnorm_dense(self, x, scope, c):
        """Keras BatchNormalization after a Dense: not fused in TF, so Mul + Add."""
        r = self.rng
        x = self.node("Mul", [x, self.const(f"{scope}/batchnorm/mul:0",
                                            (r.random(c) + 0.5).astype(np.float32))],
                      f"{scope}/batchnorm/mul_1")
        return self.node("Add", [x, self.const(f"{scope}/batchnorm/sub:0",
                                               (r.standard_normal(c) * 0.1).astype(np.float32))],
                         f"{scope}/batchnorm/add_1")

    def dense(self, x, scope, k, units):
        w = (self.rng.standard_normal((k, units)) * np.sqrt(1.0 / k)).astype(np.float32)
        m = self.node("MatMul", [x, self.const(f"{scope}/MatMul/ReadVariableOp:0", w)],
                      f"{scope}/MatMul")
        return self.node("Add", [m, self.const(f"{scope}/BiasAdd/ReadVariableOp:0", self.bias(units))],
                         f"{scope}/BiasAdd")

    def softmax(self, x, scope, out=None):
        return self.node("Softmax", [x], f"{scope}/Softmax", out=out, axis=1 if self.opset < 13 else -1)

    def conv_unfolded(self, x, scope, cin, cout, k, group=1):
        """tf2onnx without constant folding (or from TF.js / TF1 graphs): the HWIO
        variable goes through Identity (ReadVariableOp) and a Transpose to OIHW
        nodes, so the Conv weight is an activation, not an initializer."""
        w = self.weights(cout, cin // group, k).transpose(2, 3, 1, 0)  # HWIO
        w = self.node("Identity", [self.const(f"{scope}/kernel:0", np.ascontiguousarray(w))],
                      f"{scope}/Conv2D/ReadVariableOp")
        w = self.node("Transpose", [w], self.fresh(f"{scope}/Conv2D"), perm=[3, 2, 0, 1])
        return self.node("Conv", [x, w], f"{scope}/Conv2D", kernel_shape=[k, k], strides=[1, 1],
                         pads=[0, 0, 0, 0], dilations=[1, 1], group=group)

    def batchnorm_tf1(self, x, scope, c):
        """TF1's unfused batch norm on a conv: Mul and Add by [C,1,1] constants."""
        r = self.rng
        m = self.node("Mul", [x, self.const(f"{scope}/batchnorm/mul:0",
                                            (r.random((c, 1, 1)) + 0.5).astype(np.float32))],
                      f"{scope}/batchnorm/mul_1")
        return self.node("Add", [m, self.const(f"{scope}/batchnorm/sub:0",
                                               (r.standard_normal((c, 1, 1)) * 0.1).astype(np.float32))],
                         f"{scope}/batchnorm/add_1")

    def dense_unfolded(self, x, scope, k, units):
        w = (self.rng.standard_normal((k, units)) * np.sqrt(1.0 / k)).astype(np.float32)
        w = self.node("Identity", [self.const(f"{scope}/kernel:0", w)], f"{scope}/MatMul/ReadVariableOp")
        b = self.node("Identity", [self.const(f"{scope}/bias:0", self.bias(units))],
                      f"{scope}/BiasAdd/ReadVariableOp")
        m = self.node("MatMul", [x, w], f"{scope}/MatMul")
        return self.node("Add", [m, b], f"{scope}/BiasAdd")

    def model(self, name, inp, in_dims, out, out_dims, in_type=TensorProto.FLOAT):
        graph = helper.make_graph(
            self.nodes, "tf2onnx",
            [helper.make_tensor_value_info(inp, in_type, in_dims)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_dims)],
            initializer=self.inits)
        m = helper.make_model(graph, producer_name="tf2onnx", producer_version="1.9.3",
                              opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 7 if self.opset < 15 else 8
        m.doc_string = f"tfstyle/{name}: a TF-style classifier with random weights"
        return m


# -- the architectures -------------------------------------------------------
# Each returns (model, inputs: list of data-set inputs, cut name, cut width).

def arch_cnn(opset, seed):
    """Keras Sequential: Rescaling, ZeroPadding2D+Conv2D+ReLU, MaxPool, tf.pad
    (PadV2: the constant an input from opset 11) + Conv2D (no bias) +
    BatchNormalization + ReLU6, MaxPool, Flatten (constant shape), Dense(softmax)."""
    t = TFGraph(opset, seed)
    x = t.rescaling("input_1", "model/rescaling", 0.5, 0.5)
    x = t.node("Transpose", [x], "model/zero_padding2d/Pad__6", perm=[0, 3, 1, 2])
    x = t.pad(x, "model/zero_padding2d", 1, 1)
    x = t.conv(x, "model/conv2d", 3, 8, 3)
    x = t.relu(x, "model/conv2d")
    x = t.maxpool(x, "model/max_pooling2d")  # 16 -> 8
    x = t.pad(x, "model/zero_padding2d_1", 1, 1, value_input=True)
    x = t.conv(x, "model/conv2d_1", 8, 16, 3, bias=False)
    x = t.batchnorm(x, "model/batch_normalization", 16)
    x = t.relu6(x, "model/re_lu")
    x = t.maxpool(x, "model/max_pooling2d_1")  # 8 -> 4
    x = t.to_nhwc(x, "model/flatten/Reshape")
    feat = t.flatten_const(x, "model/flatten", 4 * 4 * 16)
    y = t.dense(feat, "model/dense", 256, 10)
    t.softmax(y, "model/dense", "dense")
    m = t.model("cnn", "input_1", ["unk__123", 16, 16, 3], "dense", ["unk__124", 10])
    return m, [inputs(seed, (2, 16, 16, 3))], feat, 256


def arch_mobilenet(opset, seed):
    """A MobileNetV1-like block through a SavedModel (StatefulPartitionedCall
    names): stride-2 conv after an asymmetric ZeroPadding2D (TF "SAME" at
    stride 2), ReLU6, depthwise 3x3 + BN folded into its bias, pointwise 1x1 +
    BatchNormalization present + ReLU6, MaxPool, Flatten (the computed shape
    in int32, as older tf2onnx writes it), Dense + BatchNormalization (Mul +
    Add) + ReLU, Dense(softmax), and the SavedModel's output Identity."""
    t = TFGraph(opset, seed)
    s = "StatefulPartitionedCall/mobilenet"
    x = t.node("Transpose", ["input_1"], f"{s}/conv1_pad/Pad__5", perm=[0, 3, 1, 2])
    x = t.pad(x, f"{s}/conv1_pad", 0, 1)
    x = t.conv(x, f"{s}/conv1", 3, 8, 3, stride=2)  # 24 -> 12 (pad 25, (25-3)/2+1 = 12)
    x = t.relu6(x, f"{s}/conv1_relu")
    x = t.pad(x, f"{s}/conv_pad_1", 1, 1)
    x = t.conv(x, f"{s}/conv_dw_1", 8, 8, 3, group=8)  # folded BN: the bias
    x = t.relu6(x, f"{s}/conv_dw_1_relu")
    x = t.conv(x, f"{s}/conv_pw_1", 8, 16, 1, bias=False)
    x = t.batchnorm(x, f"{s}/conv_pw_1_bn", 16)
    x = t.relu6(x, f"{s}/conv_pw_1_relu")
    x = t.maxpool(x, f"{s}/max_pooling2d")  # 12 -> 6
    x = t.to_nhwc(x, f"{s}/flatten/Reshape")
    x = t.flatten_computed_int32(x, f"{s}/flatten")
    x = t.dense(x, f"{s}/dense", 6 * 6 * 16, 32)
    x = t.batchnorm_dense(x, f"{s}/batch_normalization", 32)
    feat = t.relu(x, f"{s}/re_lu")
    y = t.dense(feat, f"{s}/predictions", 32, 5)
    y = t.softmax(y, f"{s}/predictions", None)
    t.node("Identity", [y], "Identity", out="predictions")
    m = t.model("mobilenet", "input_1", ["unk__301", 24, 24, 3], "predictions", ["unk__302", 5])
    return m, [inputs(seed, (2, 24, 24, 3)), inputs(seed + 1, (3, 24, 24, 3))], feat, 32


def arch_dynhw(opset, seed):
    """A fully convolutional classifier exported with unknown height and width
    ([unk__400, unk__401, unk__402, 3]): explicit Pad + Conv, then convs with
    auto_pad SAME_UPPER (tf2onnx's form where the size is unknown), depthwise
    + ReLU6, MaxPool 3x3 SAME_UPPER, global average pooling as ReduceMean
    (keepdims) over H and W,
    Flatten with the computed shape, Dense(softmax). Two data sets at
    different sizes."""
    t = TFGraph(opset, seed)
    x = t.rescaling("x:0", "model/rescaling", 1.0 / 127.5, -1.0)
    x = t.node("Transpose", [x], "model/stem/Pad__3", perm=[0, 3, 1, 2])
    x = t.pad(x, "model/stem", 1, 1)
    x = t.conv(x, "model/stem/conv", 3, 8, 3)
    x = t.relu(x, "model/stem/conv")
    x = t.conv(x, "Conv", 8, 8, 3, stride=2, group=8, auto_pad="SAME_UPPER")
    x = t.relu6(x, "model/block1/depthwise")
    x = t.conv(x, "model/block1/project", 8, 24, 1, auto_pad="SAME_UPPER")
    x = t.relu(x, "model/block1/project")
    x = t.maxpool(x, "model/max_pooling2d", k=3, auto_pad="SAME_UPPER")
    x = t.node("ReduceMean", [x], "model/global_average_pooling2d/Mean", axes=[2, 3], keepdims=1)
    feat = t.flatten_computed(x, "model/flatten")
    y = t.dense(feat, "model/logits", 24, 4)
    t.softmax(y, "model/logits", "Identity:0")
    m = t.model("dynhw", "x:0", ["unk__400", "unk__401", "unk__402", 3], "Identity:0",
                ["unk__403", 4])
    xs = [inputs(seed, (2, 20, 20, 3)), inputs(seed + 1, (1, 13, 27, 3))]
    return m, [x * 127.5 + 127.5 for x in xs], feat, 24  # pixels 0..255


def arch_unfolded(opset, seed):
    """The cnn as tf2onnx writes it with constant folding off (or from a TF1 /
    TF.js graph): weights as HWIO variables read through Identity and
    Transposed by nodes, TF1's unfused batch norm as Mul + Add after a
    bias-less conv, a depthwise conv, Dense weights and bias through Identity."""
    t = TFGraph(opset, seed)
    x = t.node("Transpose", ["input:0"], "sequential/conv2d/Conv2D__4", perm=[0, 3, 1, 2])
    x = t.pad(x, "sequential/zero_padding2d", 1, 1)
    x = t.conv_unfolded(x, "sequential/conv2d", 3, 8, 3)
    x = t.batchnorm_tf1(x, "sequential/batch_normalization", 8)
    x = t.relu(x, "sequential/conv2d")
    x = t.pad(x, "sequential/zero_padding2d_1", 1, 1)
    x = t.conv_unfolded(x, "sequential/depthwise_conv2d", 8, 8, 3, group=8)
    x = t.relu6(x, "sequential/re_lu")
    x = t.maxpool(x, "sequential/max_pooling2d")  # 12 -> 6
    x = t.to_nhwc(x, "sequential/flatten/Reshape")
    feat = t.flatten_const(x, "sequential/flatten", 6 * 6 * 8)
    y = t.dense_unfolded(feat, "sequential/dense", 288, 6)
    t.softmax(y, "sequential/dense", "dense")
    m = t.model("unfolded", "input:0", ["unk__55", 12, 12, 3], "dense", ["unk__56", 6])
    return m, [inputs(seed, (2, 12, 12, 3))], feat, 288


def arch_uint8(opset, seed):
    """A serving signature that takes uint8 images ([N, 16, 16, 3], batch
    named "N"): Cast to float, Keras Rescaling(1/255), then the small CNN."""
    t = TFGraph(opset, seed)
    x = t.node("Cast", ["images"], "model/Cast", to=TensorProto.FLOAT)
    x = t.rescaling(x, "model/rescaling", 1.0 / 255, 0.0)
    x = t.node("Transpose", [x], "model/conv2d/BiasAdd__8", perm=[0, 3, 1, 2])
    x = t.pad(x, "model/zero_padding2d", 1, 1)
    x = t.conv(x, "model/conv2d", 3, 8, 3)
    x = t.relu(x, "model/conv2d")
    x = t.maxpool(x, "model/max_pooling2d")  # 16 -> 8
    x = t.to_nhwc(x, "model/flatten/Reshape")
    feat = t.flatten_const(x, "model/flatten", 8 * 8 * 8)
    y = t.dense(feat, "model/dense", 512, 4)
    t.softmax(y, "model/dense", "dense")
    m = t.model("uint8", "images", ["N", 16, 16, 3], "dense", ["N", 4], in_type=TensorProto.UINT8)
    x = np.random.default_rng(1000 + seed).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    return m, [x], feat, 512


def arch_effnet(opset, seed):
    """An EfficientNet-like Keras model: stem Pad + stride-2 Conv + swish
    (x * Sigmoid(x)), depthwise Conv + BN + swish, a squeeze-excite block
    (ReduceMean keepdims, 1x1 Convs, Sigmoid, broadcast Mul), projection 1x1
    Conv, then Keras GlobalAveragePooling2D as tf2onnx leaves it when the
    Transpose is not pushed through: Transpose back to NHWC and ReduceMean
    over axes [1, 2] without keepdims, straight into Dense(softmax)."""
    t = TFGraph(opset, seed)
    s = "StatefulPartitionedCall/model"

    def swish(x, scope):
        sg = t.node("Sigmoid", [x], f"{scope}/Sigmoid")
        return t.node("Mul", [x, sg], f"{scope}/mul")

    x = t.node("Transpose", ["input_2"], f"{s}/stem_conv_pad/Pad__7", perm=[0, 3, 1, 2])
    x = t.pad(x, f"{s}/stem_conv_pad", 0, 1)
    x = t.conv(x, f"{s}/stem_conv", 3, 16, 3, stride=2)  # 20 -> 10
    x = swish(x, f"{s}/stem_activation")
    x = t.pad(x, f"{s}/block1a_dwconv_pad", 1, 1)
    x = t.conv(x, f"{s}/block1a_dwconv", 16, 16, 3, group=16, bias=False)
    x = t.batchnorm(x, f"{s}/block1a_bn", 16)
    x = swish(x, f"{s}/block1a_activation")
    se = t.node("ReduceMean", [x], f"{s}/block1a_se_squeeze/Mean", axes=[2, 3], keepdims=1)
    se = t.conv(se, f"{s}/block1a_se_reduce", 16, 4, 1)
    se = swish(se, f"{s}/block1a_se_reduce/swish")
    se = t.conv(se, f"{s}/block1a_se_expand", 4, 16, 1)
    se = t.node("Sigmoid", [se], f"{s}/block1a_se_expand/Sigmoid")
    x = t.node("Mul", [x, se], f"{s}/block1a_se_excite/mul")
    x = t.conv(x, f"{s}/block1a_project_conv", 16, 24, 1)
    x = t.to_nhwc(x, f"{s}/avg_pool/Mean")
    feat = t.node("ReduceMean", [x], f"{s}/avg_pool/Mean", axes=[1, 2], keepdims=0)
    y = t.dense(feat, f"{s}/predictions", 24, 7)
    t.softmax(y, f"{s}/predictions", "predictions")
    m = t.model("effnet", "input_2", ["unk__640", 20, 20, 3], "predictions", ["unk__641", 7])
    return m, [inputs(seed, (2, 20, 20, 3))], feat, 24


def inputs(seed, shape):
    return np.random.default_rng(1000 + seed).uniform(-1, 1, shape).astype(np.float32)


# name -> (architecture, opset). Opset 10 is the last with Pad's and Clip's
# attribute forms and Unsqueeze's axes attribute; 11 brings the input forms,
# 13 Unsqueeze's / Squeeze's axes input and the new Softmax; 17 is a recent
# tf2onnx default (Debian's python3-onnx 1.12 checks up to 17, so no 18).
MODELS = {
    "cnn-op10": (arch_cnn, 10),
    "cnn-op11": (arch_cnn, 11),
    "cnn-op13": (arch_cnn, 13),
    "cnn-op17": (arch_cnn, 17),
    "mobilenet-op11": (arch_mobilenet, 11),
    "mobilenet-op13": (arch_mobilenet, 13),
    "mobilenet-op17": (arch_mobilenet, 17),
    "dynhw-op11": (arch_dynhw, 11),
    "dynhw-op13": (arch_dynhw, 13),
    "dynhw-op17": (arch_dynhw, 17),
    "unfolded-op11": (arch_unfolded, 11),
    "unfolded-op13": (arch_unfolded, 13),
    "uint8-op13": (arch_uint8, 13),
    "effnet-op13": (arch_effnet, 13),
    "effnet-op17": (arch_effnet, 17),
}


# -- the reference: a numpy evaluator of exactly the ops above, in float64 -----

def _attrs(n):
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def _conv(x, w, b, a):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", "SAME_UPPER"):
        oh, ow = -(-h // sh), -(-wd // sw)
        ph, pw = max(0, (oh - 1) * sh + kh - h), max(0, (ow - 1) * sw + kw - wd)
        pads = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]
    else:
        pads = a.get("pads", [0, 0, 0, 0])
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (x.shape[2] - kh) // sh + 1
    ow = (x.shape[3] - kw) // sw + 1
    y = np.zeros((n, m, oh, ow))
    mg = m // g
    for gi in range(g):
        xs = x[:, gi * cg:(gi + 1) * cg]
        ws = w[gi * mg:(gi + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]  # n, cg, oh, ow
                y[:, gi * mg:(gi + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def _maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a["strides"]
    if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", "SAME_UPPER"):
        h, w = x.shape[2:]
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max(0, (oh - 1) * sh + kh - h), max(0, (ow - 1) * sw + kw - w)
        x = np.pad(x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)),
                   constant_values=-np.inf)
    oh = (x.shape[2] - kh) // sh + 1
    ow = (x.shape[3] - kw) // sw + 1
    y = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw])
    return y


def evaluate(model, x):
    opset = model.opset_import[0].version
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in env.items()}
    env[model.graph.input[0].name] = x.astype(np.float64) if x.dtype == np.float32 else x
    for n in model.graph.node:
        a = _attrs(n)
        i = [env[v] if v else None for v in n.input]
        op = n.op_type
        if op == "Transpose":
            y = np.transpose(i[0], a["perm"])
        elif op == "Pad":
            p = list(i[1]) if opset >= 11 else a["pads"]
            c = (i[2] if len(i) > 2 else 0) if opset >= 11 else a.get("value", 0)
            r = i[0].ndim
            y = np.pad(i[0], [(p[d], p[d + r]) for d in range(r)], constant_values=c)
        elif op == "Conv":
            y = _conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "BatchNormalization":
            sc, bi, mu, var = (v.reshape(1, -1, 1, 1) for v in i[1:5])
            y = (i[0] - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * sc + bi
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "Clip":
            lo, hi = (i[1], i[2]) if opset >= 11 else (a["min"], a["max"])
            y = np.clip(i[0], lo, hi)
        elif op == "MaxPool":
            y = _maxpool(i[0], a)
        elif op == "ReduceMean":
            y = np.mean(i[0], axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "Shape":
            y = np.array(i[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(i[0], i[1], axis=a.get("axis", 0))
        elif op == "Cast":
            y = i[0].astype({TensorProto.INT32: np.int32, TensorProto.INT64: np.int64,
                             TensorProto.FLOAT: np.float64}[a["to"]])
        elif op == "Slice":
            sl = [slice(None)] * i[0].ndim
            for st, en, ax in zip(i[1], i[2], i[3]):
                sl[ax] = slice(st, en)
            y = i[0][tuple(sl)]
        elif op == "Squeeze":
            y = np.squeeze(i[0], tuple(i[1]) if opset >= 13 else tuple(a["axes"]))
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Identity":
            y = i[0]
        elif op == "Mul":
            y = i[0] * i[1]
        elif op == "Unsqueeze":
            y = np.expand_dims(i[0], tuple(i[1]) if opset >= 13 else tuple(a["axes"]))
        elif op == "Concat":
            y = np.concatenate(i, axis=a["axis"])
        elif op == "Reshape":
            y = i[0].reshape([int(d) for d in i[1]])  # no 0 in these shapes
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Softmax":
            e = np.exp(i[0] - i[0].max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        else:
            raise ValueError(f"the reference evaluator has no {op}")
        env[n.output[0]] = y
    return env[model.graph.output[0].name], env


# -- writing ---------------------------------------------------------------

def script_sha():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def write_pb(path, name, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def ort_runner(ort_dir):
    """(node, NODE_PATH, ort_run.js) when ONNX Runtime can run here, else None."""
    node = shutil.which("node")
    if not node or not ort_dir or not os.path.isdir(os.path.join(ort_dir, "node_modules",
                                                                  "onnxruntime-node")):
        return None
    js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "ort_run.js")
    return node, os.path.join(ort_dir, "node_modules"), os.path.normpath(js)


def ort_agrees(runner, model_path, set_dir, ref, tmp):
    node, node_path, js = runner
    out = os.path.join(tmp, "ort-" + os.path.basename(set_dir))
    env = dict(os.environ, NODE_PATH=node_path)
    r = subprocess.run([node, js, model_path, out, os.path.join(set_dir, "input_0.pb")],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ONNX Runtime refused {model_path}: {r.stderr.strip()[:400]}")
    with open(os.path.join(out, "output_0.pb"), "rb") as f:
        got = numpy_helper.to_array(onnx.TensorProto.FromString(f.read()))
    d = float(np.max(np.abs(got.astype(np.float64) - ref)))
    lim = 1e-5 * float(np.max(np.abs(ref)))
    if got.shape != ref.shape or not d <= lim:
        raise RuntimeError(f"ONNX Runtime and the numpy reference disagree on {set_dir}: "
                           f"max|diff| {d:.3g} > {lim:.3g}")
    return d


def build(name, out_dir, runner, keep):
    arch, opset = MODELS[name]
    dest = os.path.join(out_dir, name)
    if keep:
        try:
            with open(os.path.join(dest, "info.json")) as f:
                old = json.load(f)
            if old.get("script") == script_sha() and old.get("ort") == bool(runner):
                print(f"{name}: kept")
                return
        except (OSError, ValueError):
            pass
    seed = sum(map(ord, name))
    model, xs, cut, width = arch(opset, seed)
    onnx.checker.check_model(model, full_check=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir)
    try:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(model, path)
        diffs = []
        for k, x in enumerate(xs):
            y, env = evaluate(model, x)
            assert env[cut].shape == (x.shape[0], width), (cut, env[cut].shape)
            sd = os.path.join(tmp, f"test_data_set_{k}")
            os.makedirs(sd)
            write_pb(os.path.join(sd, "input_0.pb"), model.graph.input[0].name, x)
            write_pb(os.path.join(sd, "output_0.pb"), model.graph.output[0].name,
                     y.astype(np.float32))
            write_pb(os.path.join(sd, "features.pb"), cut, env[cut].astype(np.float32))
            sm = [n for n in model.graph.node if n.op_type == "Softmax"][-1]
            logits = sm.input[0]
            write_pb(os.path.join(sd, "logits.pb"), logits, env[logits].astype(np.float32))
            if runner:
                diffs.append(ort_agrees(runner, path, sd, y, tmp))
        info = {"name": name, "opset": opset, "cut": cut, "width": width,
                "sets": [list(x.shape) for x in xs], "ort": bool(runner),
                "ort_max_diff": max(diffs) if diffs else None, "script": script_sha()}
        with open(os.path.join(tmp, "info.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        for e in os.listdir(tmp):
            if e.startswith("ort-"):
                shutil.rmtree(os.path.join(tmp, e))
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    how = (f"ONNX Runtime agrees (max|diff| {max(diffs):.2g})" if runner
           else "ONNX Runtime not found: numpy reference only")
    print(f"{name}: opset {opset}, {len(model.graph.node)} nodes, cut '{cut}' ({width}); {how}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("models", nargs="*", help="model names (default: all)")
    ap.add_argument("--ort-dir", default=os.environ.get("GRAFT_ORT_DIR", ""),
                    help="folder holding node_modules/onnxruntime-node")
    ap.add_argument("--keep", action="store_true",
                    help="keep a folder written by the same version of this script")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    a = ap.parse_intermixed_args()
    if a.list:
        print("\n".join(MODELS))
        return 0
    if not a.out_dir:
        ap.error("OUT_DIR is required")
    for m in a.models:
        if m not in MODELS:
            ap.error(f"unknown model {m} (one of {', '.join(MODELS)})")
    os.makedirs(a.out_dir, exist_ok=True)
    runner = ort_runner(a.ort_dir)
    try:
        for m in a.models or MODELS:
            build(m, a.out_dir, runner, a.keep)
    except (RuntimeError, onnx.checker.ValidationError, AssertionError, ValueError) as e:
        print(f"make_tfstyle: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
