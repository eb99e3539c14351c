"""e2e/cli: --help on every command, --version, inspect on the default
backbone (text and JSON, the automatic cut), run writing output_N.pb, and
train on a batch-1 trace with a training-form BatchNormalization (notes,
inference-form export, symbolic or kept batch)."""
import collections
import json
import os
import shutil

import numpy as np
import onnx

from e2e_util import BACKBONE, WORK, check, finish, graft, read_tensor, require_cli, write_tensor

require_cli()
code, out, err = graft("--help")
check(code == 0 and "inspect" in out and "train" in out and "eval" in out and "run" in out,
      "graft --help lists the commands")
code, out, err = graft("--version")
check(code == 0 and out.startswith("graft "), "graft --version (%r)" % out.strip())
for cmd in ("inspect", "run", "train", "eval"):
    code, out, err = graft(cmd, "--help")
    check(code == 0 and out.startswith("usage: graft " + cmd) and err == "",
          "graft %s --help" % cmd)

# Expectations from the file itself, read with onnx.
src = onnx.load(BACKBONE)
n_params = int(sum(np.prod(t.dims) for t in src.graph.initializer))
gemm = [n for n in src.graph.node if n.op_type == "Gemm"][-1]
fc_w = [t for t in src.graph.initializer if t.name == gemm.input[1]][0]
cut_shape = "[N,%d]" % fc_w.dims[1]  # Gemm with transB=1: weight [classes, features]
hist_want = collections.Counter(n.op_type for n in src.graph.node)

code, out, err = graft("inspect", BACKBONE)
check(code == 0, "inspect exits 0 %s" % err.strip())
for want in ("ir_version  %d" % src.ir_version, "input ", "[N,1,28,28]", "logits", "Conv",
             "BatchNormalization", str(n_params), "%s %s" % (gemm.input[0], cut_shape),
             "Gemm node '%s'" % gemm.name):
    check(want in out, "inspect shows %r" % want)
check("cannot run" not in out, "every op of the backbone is supported")

code, out, err = graft("inspect", "--json", BACKBONE)
try:
    j = json.loads(out)
    check(j["parameters"] == n_params, "inspect --json parameters")
    check(j["inputs"][0]["shape"] == ["N", 1, 28, 28], "inspect --json input shape")
    check(j["feature_cut"]["value"]["name"] == gemm.input[0], "inspect --json cut")
    hist = {o["op_type"]: o["count"] for o in j["ops"]}
    check(hist == dict(hist_want), "op histogram %s" % hist)
except (ValueError, KeyError) as e:
    check(False, "inspect --json is JSON with the fields (%s)" % e)

d = os.path.join(WORK, "cli_run")
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)
inp = os.path.join(d, "input_0.pb")
write_tensor(inp, np.zeros((3, 1, 28, 28), np.float32), "input")
code, out, err = graft("run", BACKBONE, "--in", inp, "--out-dir", os.path.join(d, "o"))
check(code == 0, "run exits 0 %s" % err.strip())
if code == 0:
    t, y = read_tensor(os.path.join(d, "o", "output_0.pb"))
    check(t.name == "logits" and y.shape == (3, 5) and y.dtype == np.float32,
          "output_0.pb is logits [3,5] float32 (%s %s %s)" % (t.name, y.shape, y.dtype))
    check(np.all(y[0] == y[1]) and np.all(y[1] == y[2]), "same input, same output per row")

# A backbone traced at batch 1 with its BatchNormalization in training form:
# train notes both, runs BN with its stored statistics, and exports an
# inference graph with a symbolic batch (or the declared one with --keep-batch).
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

rng = np.random.default_rng(1)
inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(np.ones(4, np.float32), "s"),
         numpy_helper.from_array(np.zeros(4, np.float32), "b"),
         numpy_helper.from_array(np.zeros(4, np.float32), "mu"),
         numpy_helper.from_array(np.ones(4, np.float32), "var"),
         numpy_helper.from_array(rng.normal(0, 0.3, (3, 4)).astype(np.float32), "fw"),
         numpy_helper.from_array(np.zeros(3, np.float32), "fb")]
nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("BatchNormalization", ["c", "s", "b", "mu", "var"],
                          ["bn_y", "run_mean", "run_var"], training_mode=1, name="bn"),
         helper.make_node("Relu", ["bn_y"], ["r"], name="relu"),
         helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
         helper.make_node("Flatten", ["p"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1, name="fc")]
g = helper.make_graph(nodes, "traced",
                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
                      [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
m.ir_version = 8
traced = os.path.join(d, "traced_bn_training.onnx")
onnx.save(m, traced)
code, out, err = graft("inspect", traced)
check(code == 0 and "note: BatchNormalization 'bn' has training_mode=1" in out,
      "inspect notes the training-form BatchNormalization")
for keep in (False, True):
    exp = os.path.join(d, "traced_ft%s.onnx" % ("_keep" if keep else ""))
    args = ["train", "--model", traced, "--classes", "5,6", "--per-class", "5", "--epochs", "1",
            "--scale", "0.00392156862745098", "--quiet", "--out", exp]
    code, out, err = graft(*(args + (["--keep-batch"] if keep else [])))
    if not check(code == 0, "train on the traced backbone (keep-batch %s) %s" % (keep, err.strip())):
        continue
    check("note: BatchNormalization 'bn'" in out, "train notes the training-form BN")
    check(("note: input 'input' is declared with batch size 1" in out) != keep,
          "train notes the batch relaxation only when it makes it (keep-batch %s)" % keep)
    e = onnx.load(exp)
    onnx.checker.check_model(e, full_check=True)
    bn = [n for n in e.graph.node if n.op_type == "BatchNormalization"][0]
    check(len(bn.output) == 1 and not [a for a in bn.attribute if a.name == "training_mode"],
          "export writes BN in inference form")
    d0 = e.graph.input[0].type.tensor_type.shape.dim[0]
    if keep:
        check(d0.HasField("dim_value") and d0.dim_value == 1, "--keep-batch keeps batch 1")
    else:
        check(d0.HasField("dim_param") and d0.dim_param, "export has a symbolic batch")
finish()
