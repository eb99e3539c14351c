"""e2e/run_notes: `graft run` says when it runs an input another runtime
would refuse (an element type other than the declared one, a fixed dimension
fed another size), and an empty --out-dir is a command-line error."""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper

from e2e_util import BACKBONE, WORK, check, finish, graft, read_tensor, require_cli, write_tensor

require_cli()
d = os.path.join(WORK, "run_notes")
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)

x16 = os.path.join(d, "x16.pb")
write_tensor(x16, np.full((2, 1, 28, 28), 0.5, np.float16), "input")
code, out, err = graft("run", BACKBONE, "--in", x16, "--out-dir", os.path.join(d, "o16"))
check(code == 0, "float16 input to a float32 model runs %s" % err.strip())
check("note: %s holds float16; input 'input' is declared float32, converted" % x16 in out,
      "run notes the conversion (%r)" % out)
x32 = os.path.join(d, "x32.pb")
write_tensor(x32, np.full((2, 1, 28, 28), 0.5, np.float32), "input")
code, out, err = graft("run", BACKBONE, "--in", x32, "--out-dir", os.path.join(d, "o32"))
check(code == 0 and "note:" not in out, "no note for a matching input (%r)" % out)
if code == 0:
    a = read_tensor(os.path.join(d, "o16", "output_0.pb"))[1]
    b = read_tensor(os.path.join(d, "o32", "output_0.pb"))[1]
    check(np.array_equal(a, b), "0.5 as float16 and float32 give the same output")

# a batch-1 trace fed a batch of 3
g = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"], name="relu")], "fixed",
                      [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
                      [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])])
fixed = os.path.join(d, "fixed.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), fixed)
x3 = os.path.join(d, "x3.pb")
write_tensor(x3, np.arange(-6, 6, dtype=np.float32).reshape(3, 4), "X")
code, out, err = graft("run", fixed, "--in", x3, "--out-dir", os.path.join(d, "o3"))
check(code == 0 and "note: input 'X' is declared [1,4]; running it as [3,4]" in out,
      "run notes the batch it was not declared for (%r %r)" % (out, err))
if code == 0:
    y = read_tensor(os.path.join(d, "o3", "output_0.pb"))[1]
    check(np.array_equal(y, np.maximum(np.arange(-6, 6, dtype=np.float32).reshape(3, 4), 0)),
          "every row computed")

code, out, err = graft("run", BACKBONE, "--in", x32, "--out-dir", "")
check(code == 2 and err.startswith("graft: ") and "--out-dir" in err and len(err.splitlines()) == 1,
      "empty --out-dir: exit 2 naming it (%d %r)" % (code, err))
finish()
