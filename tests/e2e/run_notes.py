"""e2e/run_notes: `graft run` says when it runs an input another runtime
would refuse (an element type other than the declared one, a fixed dimension
fed another size), and an empty --out-dir is a command-line error. It runs
ONNX node tests whose integer inputs shape the output (Tile's repeats,
Reshape's shape, Expand, TopK's k, Range) and onnx 1.12's bfloat16 inputs
stored as uint16, matching their stored outputs; --out-dir's missing parents
are created."""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper  # noqa: F401

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
# node tests through `graft run`: integer inputs are known when the plan is built
NODE = "/usr/share/libonnx-testdata/data/node"
cases = ["test_tile", "test_reshape_reordered_all_dims", "test_expand_dim_changed",
         "test_top_k", "test_range_float_type_positive_delta", "test_cast_BFLOAT16_to_FLOAT",
         "test_onehot_with_axis"]
for c in cases if os.path.isdir(NODE) else []:
    cd = os.path.join(NODE, c)
    ins = sorted(f for f in os.listdir(os.path.join(cd, "test_data_set_0")) if f.startswith("input"))
    args = []
    for f in ins:
        args += ["--in", os.path.join(cd, "test_data_set_0", f)]
    od = os.path.join(d, "node", c, "out")  # parents made by graft
    code, out, err = graft("run", os.path.join(cd, "model.onnx"), *args, "--out-dir", od)
    check(code == 0, "graft run %s (%r)" % (c, err.strip()[:200]))
    if code != 0:
        continue
    k = 0
    while os.path.exists(os.path.join(cd, "test_data_set_0", "output_%d.pb" % k)):
        want = onnx.numpy_helper.to_array(
            onnx.load_tensor(os.path.join(cd, "test_data_set_0", "output_%d.pb" % k)))
        got = read_tensor(os.path.join(od, "output_%d.pb" % k))[1]
        if want.dtype == np.uint16:  # onnx 1.12 stores bfloat16 as its bits
            want = (want.astype(np.uint32) << 16).view(np.float32)
        check(got.shape == want.shape and np.allclose(got.astype(np.float64),
                                                      want.astype(np.float64), rtol=1e-4,
                                                      atol=1e-5, equal_nan=True),
              "%s output %d matches the stored output" % (c, k))
        k += 1

# a uint8 input fed other values holds what uint8 can, as a Cast would make it:
# -5 -> 251, 300 -> 44, 0.7 -> 0
g = helper.make_graph([helper.make_node("Cast", ["u"], ["f"], to=TensorProto.FLOAT, name="c")],
                      "u8", [helper.make_tensor_value_info("u", TensorProto.UINT8, [3])],
                      [helper.make_tensor_value_info("f", TensorProto.FLOAT, [3])])
u8 = os.path.join(d, "u8.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), u8)
for name, arr in (("f", np.array([-5, 300, 0.7], np.float32)), ("i", np.array([-5, 300, 0], np.int64))):
    xu = os.path.join(d, "u8_%s.pb" % name)
    write_tensor(xu, arr, "u")
    code, out, err = graft("run", u8, "--in", xu, "--out-dir", os.path.join(d, "ou8" + name))
    got = read_tensor(os.path.join(d, "ou8" + name, "output_0.pb"))[1] if code == 0 else None
    check(got is not None and list(got) == [251, 44, 0],
          "a %s feed of a uint8 input wraps as Cast would (%s %r)" % (arr.dtype, got, err[:200]))

finish()
