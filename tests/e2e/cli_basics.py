"""e2e/cli: --help on every command, --version, inspect on the default
backbone (text and JSON, the automatic cut), and run writing output_N.pb."""
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
finish()
