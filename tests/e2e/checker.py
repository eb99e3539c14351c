"""e2e/checker: the exported model is standard ONNX: it passes
onnx.checker.check_model(full_check=True), keeps the source's metadata and
doc string, carries the class labels and preprocessing, has a dynamic batch,
an ir_version no higher than the source's (opset 13 needs no more) and no
training-only nodes."""
import json

import onnx

from e2e_util import BACKBONE, FT_MODEL, check, finish

src = onnx.load(BACKBONE)
m = onnx.load(FT_MODEL)
try:
    onnx.checker.check_model(m, full_check=True)
    check(True, "onnx.checker.check_model(full_check=True)")
except Exception as e:  # noqa: BLE001 - the message is the point
    check(False, "onnx.checker.check_model(full_check=True): %s" % e)

meta = {p.key: p.value for p in m.metadata_props}
for p in src.metadata_props:
    check(meta.get(p.key) == p.value, "source metadata %s kept" % p.key)
check(meta.get("graft.labels") == "Sandal,Shirt,Sneaker,Bag,Ankle boot",
      "graft.labels = %r" % meta.get("graft.labels"))
check(meta.get("graft.classes") == "5,6,7,8,9", "graft.classes = %r" % meta.get("graft.classes"))
try:
    pp = json.loads(meta.get("graft.preprocess", ""))
    check(pp.get("height") == 28 and pp.get("width") == 28 and pp.get("channels") == 1,
          "graft.preprocess is JSON with the input size")
except ValueError:
    check(False, "graft.preprocess is JSON")
check(m.doc_string == src.doc_string, "model doc string kept")
check(m.ir_version <= src.ir_version, "ir_version %d <= source's %d" % (m.ir_version,
                                                                      src.ir_version))
opsets = {o.domain: o.version for o in m.opset_import}
check(opsets.get("", opsets.get("ai.onnx")) == 13, "default-domain opset 13 (%s)" % opsets)
check(len(m.graph.input) == 1 and m.graph.input[0].name == "input", "one input named 'input'")
dim0 = m.graph.input[0].type.tensor_type.shape.dim[0]
check(dim0.dim_param != "" or not dim0.HasField("dim_value"), "dynamic batch dimension")
check(len(m.graph.output) == 1, "one output")
out_dims = m.graph.output[0].type.tensor_type.shape.dim
check(len(out_dims) == 2 and out_dims[1].dim_value == 5, "output [N,5]")
ops = [n.op_type for n in m.graph.node]
check(ops[-1] == "Softmax", "ends in Softmax (%s)" % ops[-3:])
training_only = {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss", "Gradient",
                 "Momentum", "Adam", "Adagrad"}
check(not (set(ops) & training_only), "no training-only ops")
for n in m.graph.node:
    if n.op_type == "Dropout" and len(n.input) >= 3 and n.input[2]:
        check(False, "Dropout %s has a training_mode input" % n.name)
    if n.op_type == "BatchNormalization":
        check(len(n.output) == 1, "BatchNormalization %s in inference form" % n.name)
names = [n.name for n in m.graph.node]
check(all(names) and len(set(names)) == len(names), "node names unique and non-empty")
finish()
