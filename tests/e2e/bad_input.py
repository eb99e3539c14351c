"""e2e/bad_input: a truncated or corrupt model, an unsupported op, a missing
data file and a bad flag each give exactly one line on stderr naming the
file or flag and the problem, a non-zero exit, and no output file."""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from e2e_util import (BACKBONE, FMNIST, FT_MODEL, SRC, WORK, check, finish, graft, require_cli,
                      write_png, write_tensor)

require_cli()
work = os.path.join(WORK, "bad")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
out = os.path.join(work, "out.onnx")
out_dir = os.path.join(work, "run_out")
train_small = ["--classes", "5,6", "--per-class", "5", "--epochs", "1"]

with open(BACKBONE, "rb") as f:
    good = f.read()
truncated = os.path.join(work, "truncated.onnx")
with open(truncated, "wb") as f:
    f.write(good[:len(good) // 3])
corrupt = os.path.join(work, "corrupt.onnx")
with open(corrupt, "wb") as f:
    f.write(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
empty = os.path.join(work, "empty.onnx")
open(empty, "wb").close()

# A CNN with a custom-domain op inside the backbone.
rng = np.random.default_rng(0)
w = numpy_helper.from_array(rng.normal(0, 0.1, (8, 1, 3, 3)).astype(np.float32), "w")
fw = numpy_helper.from_array(rng.normal(0, 0.1, (3, 8)).astype(np.float32), "fw")
fb = numpy_helper.from_array(np.zeros(3, np.float32), "fb")
nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("FancyActivation", ["c"], ["a"], domain="com.example", name="fancy"),
         helper.make_node("GlobalAveragePool", ["a"], ["p"], name="gap"),
         helper.make_node("Flatten", ["p"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1, name="fc")]
graph = helper.make_graph(
    nodes, "custom", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], [w, fw, fb])
custom_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                       helper.make_opsetid("com.example", 1)])
custom_model.ir_version = 7
custom = os.path.join(work, "custom_op.onnx")
onnx.save(custom_model, custom)

x = os.path.join(work, "x.pb")
write_tensor(x, np.zeros((1, 1, 28, 28), np.float32), "input")
x_trunc = os.path.join(work, "x_truncated.pb")
with open(x, "rb") as f:
    data = f.read()
with open(x_trunc, "wb") as f:
    f.write(data[:len(data) - 100])


def expect_error(what, args, names, code_want=None, outputs=(out, out_dir)):
    for o in outputs:
        if os.path.isdir(o):
            shutil.rmtree(o)
        elif os.path.exists(o):
            os.remove(o)
    before = set(os.listdir(work))
    code, stdout, stderr = graft(*args)
    lines = stderr.splitlines()
    ok_code = code != 0 and (code_want is None or code == code_want)
    check(ok_code, "%s: exit %d%s" % (what, code, "" if code_want is None else
                                      " (want %d)" % code_want))
    check(len(lines) == 1, "%s: exactly one line on stderr (%d: %r)" % (what, len(lines),
                                                                      stderr[:300]))
    if lines:
        check(lines[0].startswith("graft: "), "%s: starts with 'graft: ' (%r)" % (what, lines[0]))
        for n in names:
            check(n in lines[0], "%s: names %r (%r)" % (what, n, lines[0]))
    for o in outputs:
        check(not os.path.exists(o), "%s: no %s left" % (what, os.path.basename(o)))
    after = set(os.listdir(work))
    check(after <= before, "%s: no new files (%s)" % (what, sorted(after - before)))


# Broken model files, through every command that reads a model.
for label, path in (("truncated", truncated), ("corrupt", corrupt), ("empty", empty)):
    says = [path] + (["empty"] if label == "empty" else [])
    expect_error("inspect %s model" % label, ["inspect", path], says, 1)
    expect_error("run %s model" % label, ["run", path, "--in", x, "--out-dir", out_dir], says, 1)
    expect_error("train %s model" % label, ["train", "--model", path, "--out", out] + train_small,
                 [path], 1)
    expect_error("eval %s model" % label,
                 ["eval", path, "--idx-images", FMNIST + "/t10k-images-idx3-ubyte.gz",
                  "--idx-labels", FMNIST + "/t10k-labels-idx1-ubyte.gz"], [path], 1)

# An op graft cannot run: named in the one line; inspect still describes it.
expect_error("run unsupported op", ["run", custom, "--in", x, "--out-dir", out_dir],
             ["FancyActivation"], 1)
expect_error("train unsupported op", ["train", "--model", custom, "--out", out] + train_small,
             ["FancyActivation"], 1)
code, stdout, stderr = graft("inspect", custom)
check(code == 0 and "FancyActivation" in stdout and "cannot run" in stdout,
      "inspect marks the op graft cannot run")

# An index out of range, found only when the op runs: the model and the node named.
g = helper.make_graph(
    [helper.make_node("GatherElements", ["data", "idx"], ["y"], axis=1, name="pick")], "ge",
    [helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3]),
     helper.make_tensor_value_info("idx", TensorProto.FLOAT, [2, 2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
g.input[1].type.tensor_type.elem_type = TensorProto.INT64
gem = os.path.join(work, "gather_elements.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), gem)
gd, gi = os.path.join(work, "ge_data.pb"), os.path.join(work, "ge_idx.pb")
write_tensor(gd, np.zeros((2, 3), np.float32), "data")
write_tensor(gi, np.array([[0, 1], [2, 7]], np.int64), "idx")
expect_error("run with an index out of range", ["run", gem, "--in", gd, "--in", gi,
                                                 "--out-dir", out_dir], [gem, "'pick'", "7"], 1)

# Missing and broken data files.
missing = os.path.join(work, "no-such-images.gz")
expect_error("train missing images", ["train", "--model", BACKBONE, "--out", out,
                                      "--idx-images", missing, "--idx-labels",
                                      FMNIST + "/train-labels-idx1-ubyte.gz"] + train_small,
             [missing], 1)
expect_error("train missing folder", ["train", "--model", BACKBONE, "--out", out, "--data",
                                      missing, "--epochs", "1"], [missing], 1)
expect_error("eval missing labels", ["eval", FT_MODEL if os.path.exists(FT_MODEL) else BACKBONE,
                                     "--idx-images", FMNIST + "/t10k-images-idx3-ubyte.gz",
                                     "--idx-labels", missing], [missing], 1)
expect_error("run missing input", ["run", BACKBONE, "--in", missing, "--out-dir", out_dir],
             [missing], 1)
expect_error("run truncated input", ["run", BACKBONE, "--in", x_trunc, "--out-dir", out_dir],
             [x_trunc], 1)
expect_error("train missing model", ["train", "--model", missing, "--out", out] + train_small,
             [missing], 1)
expect_error("train class out of range", ["train", "--model", BACKBONE, "--out", out,
                                          "--classes", "5,12", "--per-class", "5"], ["12"], 1)

# Bad flags and values: exit 2, the flag named.
expect_error("unknown flag", ["train", "--out", out, "--bogus", "1"], ["--bogus"], 2)
expect_error("bad number", ["train", "--out", out, "--epochs", "ten"], ["--epochs", "ten"], 2)
expect_error("out of range", ["train", "--out", out, "--lr", "-1"], ["--lr"], 2)
expect_error("bad optimizer", ["train", "--out", out, "--optimizer", "rmsprop"],
             ["--optimizer", "rmsprop"], 2)
expect_error("bad augment", ["train", "--out", out, "--augment", "shear=0.2"], ["--augment"], 2)
expect_error("bad classes", ["train", "--out", out, "--classes", "5,x"], ["--classes"], 2)
expect_error("missing value", ["train", "--out", out, "--epochs"], ["--epochs"], 2)
expect_error("missing --out", ["train", "--epochs", "1"], ["--out"], 2)
expect_error("out folder missing", ["train", "--out", os.path.join(work, "nodir", "m.onnx")],
             ["--out", "nodir"], 2)
expect_error("run without --out-dir", ["run", BACKBONE, "--in", x], ["--out-dir"], 2)
expect_error("run input count", ["run", BACKBONE, "--in", x, "--in", x, "--out-dir", out_dir],
             ["input"], 2)
expect_error("inspect unknown flag", ["inspect", BACKBONE, "--fast"], ["--fast"], 2)
expect_error("eval without data", ["eval", BACKBONE], ["--idx-images"], 2)
expect_error("unknown command", ["fly"], ["fly"], 2)

# Outputs that would destroy the model or each other: refused before any
# work (exit 2, both flags named), the model untouched.
import filecmp  # noqa: E402
import json  # noqa: E402
bk = os.path.join(work, "bk.onnx")
shutil.copyfile(BACKBONE, bk)
bk_link = os.path.join(work, "bk_link.onnx")
os.symlink("bk.onnx", bk_link)
rep = os.path.join(work, "r.json")
for what, args, names in (
        ("--out is the model", ["--out", bk], ["--out", "--model"]),
        ("--out is the model (other spelling)", ["--out", os.path.join(work, ".", "bk.onnx")],
         ["--out", "--model"]),
        ("--out is a symlink to the model", ["--out", bk_link], ["--out", "--model"]),
        ("--json is the model", ["--out", out, "--json", bk], ["--json", "--model"]),
        ("--json is --out", ["--out", out, "--json", out], ["--json", "--out"])):
    expect_error(what, ["train", "--model", bk] + args + train_small, names, 2,
                 outputs=(out, rep))
    check(filecmp.cmp(bk, BACKBONE, shallow=False), "%s: the model is untouched" % what)
# Output problems found up front: nothing trained, nothing written.
expect_error("--json in a missing folder", ["train", "--model", BACKBONE, "--out", out, "--json",
                                            os.path.join(work, "nodir", "r.json")] + train_small,
             ["--json", "nodir"], 2)
expect_error("--out empty", ["train", "--model", BACKBONE, "--out", ""] + train_small, ["--out"], 2)
expect_error("--json empty", ["train", "--model", BACKBONE, "--out", out, "--json", ""]
             + train_small, ["--json"], 2)
expect_error("--out a folder", ["train", "--model", BACKBONE, "--out", work] + train_small,
             ["--out", "folder"], 2)
expect_error("--json a folder", ["train", "--model", BACKBONE, "--out", out, "--json", work]
             + train_small, ["--json", "folder"], 2)
# A flag where a value should be is a missing value.
expect_error("--model without value", ["train", "--model", "--out", out], ["--model needs a value"],
             2)
expect_error("--std of 0", ["train", "--out", out, "--std", "0"], ["--std"], 2)
expect_error("--std negative", ["train", "--out", out, "--std", "-0.5"], ["--std"], 2)

# Messages that name the file and the way out.
expect_error("train empty model says empty", ["train", "--model", empty, "--out", out]
             + train_small, [empty, "is empty"], 1)
expect_error("eval empty model says empty",
             ["eval", empty, "--idx-images", FMNIST + "/t10k-images-idx3-ubyte.gz",
              "--idx-labels", FMNIST + "/t10k-labels-idx1-ubyte.gz"], [empty, "is empty"], 1)
expect_error("input shape mismatch", ["train", "--model", BACKBONE, "--out", out, "--size", "32x32"]
             + train_small, [BACKBONE, "--size", "--channels"], 1)
expect_error("eval model scores fewer classes than the data",
             ["eval", BACKBONE, "--idx-images", FMNIST + "/t10k-images-idx3-ubyte.gz",
              "--idx-labels", FMNIST + "/t10k-labels-idx1-ubyte.gz", "--per-class", "2"],
             [BACKBONE, FMNIST + "/t10k-labels-idx1-ubyte.gz", "--classes"], 1)
# A bad cut in the manifest is the manifest's, not a --cut flag's.
cutdir = os.path.join(work, "cutm")
os.makedirs(cutdir)
shutil.copyfile(BACKBONE, os.path.join(cutdir, "m.onnx"))
with open(os.path.join(SRC, "models", "fmnist_cnn.json")) as f:
    man = json.load(f)
man["cut"] = "nosuch"
with open(os.path.join(cutdir, "m.json"), "w") as f:
    json.dump(man, f)
code, _, stderr = graft("train", "--model", os.path.join(cutdir, "m.onnx"), "--out", out,
                        *train_small)
check(code == 1 and len(stderr.splitlines()) == 1 and os.path.join(cutdir, "m.json") in stderr
      and "--cut 'nosuch'" not in stderr and "nosuch" in stderr,
      "a bad manifest cut names the manifest (%r)" % stderr)
check(not os.path.exists(out), "bad manifest cut: no output")
# One class is not enough for a head: the data source is named.
one = os.path.join(work, "oneclass")
os.makedirs(os.path.join(one, "only"))
for i in range(3):
    write_png(os.path.join(one, "only", "%d.png" % i), np.zeros((28, 28), np.uint8))
expect_error("one class", ["train", "--model", BACKBONE, "--out", out, "--data", one,
                           "--epochs", "1"], [one, "2 classes"], 1)
finish()
