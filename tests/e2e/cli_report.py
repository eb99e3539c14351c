"""e2e/report: what train and eval report. eval of a model scoring more
classes than the data (an "other" column, no crash), of a model traced at
batch 1 (runs at that batch), of a model without graft metadata on a folder
(a note); train --json - (stdout is the JSON: settings and per-epoch
history), no best epoch without validation, --per-class notes, timing; eval
on IDX files holding only the model's classes (5 and 6, labels unchanged)."""
import json
import os
import re
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from e2e_util import (BACKBONE, FMNIST, WORK, check, finish, fmnist, graft, require_cli,
                      write_png)

require_cli()
d = os.path.join(WORK, "report")
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)
idx = ["--idx-images", FMNIST + "/t10k-images-idx3-ubyte.gz",
       "--idx-labels", FMNIST + "/t10k-labels-idx1-ubyte.gz"]

# The backbone scores 5 classes (0-4); data of 3 or 4 of them.
for classes in ("0,1,2", "0,1,2,3"):
    k = len(classes.split(","))
    code, out, err = graft("eval", BACKBONE, *idx, "--classes", classes, "--per-class", "40")
    check(code == 0 and err == "", "eval --classes %s exits 0 (%d %r)" % (classes, code, err[:200]))
    check(" other" in out and "note: the model scores more classes" in out,
          "eval --classes %s: an 'other' column and a note" % classes)
    code, out, err = graft("eval", BACKBONE, *idx, "--classes", classes, "--per-class", "40",
                           "--json", "-")
    try:
        j = json.loads(out)
        total = sum(map(sum, j["confusion"])) + sum(j["confusion_other"])
        check(j["n"] == 40 * k and total == j["n"] and len(j["classes"]) == k
              and len(j["confusion"][0]) == k,
              "eval --json: %d classes, every image counted once (%d of %d)" % (k, total, j["n"]))
        right = sum(j["confusion"][i][i] for i in range(k))
        check(abs(j["accuracy"] - right / j["n"]) < 1e-9, "predictions outside count as errors")
    except (ValueError, KeyError, TypeError) as e:
        check(False, "eval --classes %s --json - is JSON with confusion_other (%s)" % (classes, e))

# A model traced at batch 1, its batch baked into a Reshape: eval runs at 1.
rng = np.random.default_rng(2)
inits = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(np.array([1, 4 * 28 * 28], np.int64), "shape"),
         numpy_helper.from_array(rng.normal(0, 0.05, (4 * 28 * 28, 3)).astype(np.float32), "fw")]
nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("Reshape", ["r", "shape"], ["f"], name="flat"),
         helper.make_node("MatMul", ["f", "fw"], ["logits"], name="fc")]
g = helper.make_graph(nodes, "batch1",
                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
                      [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 7
b1 = os.path.join(d, "batch1.onnx")
onnx.save(m, b1)
code, out, err = graft("eval", b1, *idx, "--classes", "0,1,2", "--per-class", "7", "--json")
try:
    j = json.loads(out)
    check(code == 0 and j["n"] == 21, "eval of a batch-1 model runs (%d %r)" % (code, err.strip()))
except ValueError:
    check(False, "eval of a batch-1 model runs (%d %r)" % (code, err.strip()))

# A model without graft metadata on a folder: the alphabetical mapping is noted.
x, y = fmnist("test", [0, 1])
folder = os.path.join(d, "folder")
for k, name in enumerate(("a_tshirt", "b_trouser")):
    os.makedirs(os.path.join(folder, name))
    for i, j in enumerate(np.where(y == k)[0][:5]):
        write_png(os.path.join(folder, name, "%d.png" % i), x[j])
code, out, err = graft("eval", BACKBONE, "--data", folder)
check(code == 0 and re.search(r"^note: .*alphabetical.*outputs 0\.\.1", out, re.M),
      "eval --data without graft metadata notes the alphabetical mapping (%d %r)"
      % (code, (err or out)[:300]))

# train --json -: the JSON alone on stdout, the report on stderr.
ft = os.path.join(d, "ft.onnx")
code, out, err = graft("train", "--model", BACKBONE, "--classes", "5,6", "--per-class", "30",
                       "--epochs", "3", "--val-split", "0", "--out", ft, "--json", "-")
check(code == 0, "train --json - exits 0 (%r)" % err[-300:])
rep = {}
try:
    rep = json.loads(out)
    check(True, "train --json -: stdout is JSON")
except ValueError:
    check(False, "train --json -: stdout is JSON (%r)" % out[:200])
st = rep.get("settings", {})
for key in ("model", "cut", "data", "classes", "per_class", "preprocess", "head", "epochs",
            "batch", "optimizer", "lr", "momentum", "l1", "l2", "patience", "augment", "seed",
            "threads", "val_split"):
    check(key in st, "train --json settings has %r" % key)
check(st.get("classes") == [5, 6] and st.get("per_class") == 30 and st.get("epochs") == 3,
      "settings hold the flags given")
fr = rep.get("fine_tuned", {})
hist = fr.get("history", [])
check(len(hist) == 3 and all(set(("loss", "accuracy", "val_loss", "val_accuracy", "seconds"))
                             <= set(e) for e in hist), "history: one entry per epoch")
# Without validation there is no best epoch.
check("best_epoch" in fr and fr["best_epoch"] is None, "best_epoch is null without validation")
check("no validation split: last epoch kept" in err and "best 0" not in err,
      "the report says the last epoch is kept")
# Backbone and head seconds apart: together no more than the whole run.
check(fr.get("feature_seconds", 1) + fr.get("train_seconds", 1) <= fr.get("seconds", 0) + 1e-3,
      "backbone + head seconds within the run's (%s)" % {k: fr.get(k) for k in
                                                          ("feature_seconds", "train_seconds",
                                                           "seconds")})
check(re.search(r"backbone [0-9.]+s, head [0-9.]+s", err), "summary line has both times")

# --per-class beyond what a class has: a note; 0 means all.
ft2 = os.path.join(d, "ft2.onnx")
code, out, err = graft("train", "--model", BACKBONE, "--data", folder, "--per-class", "50",
                       "--epochs", "1", "--val-split", "0", "--quiet", "--out", ft2)
check(code == 0 and re.search(r"^note: --per-class 50: .*a_tshirt 5.*b_trouser 5", out, re.M),
      "--per-class above what there is gives a note (%d %r)" % (code, (err or out)[:300]))
code, out, err = graft("train", "--model", BACKBONE, "--data", folder, "--per-class", "0",
                       "--epochs", "1", "--val-split", "0", "--quiet", "--out", ft2)
check(code == 0 and "10 images, 2 classes" in out and "note: --per-class" not in out,
      "--per-class 0 takes every image (%d %r)" % (code, err.strip()))
# IDX files of classes 5 and 6 only (label numbers kept): eval takes the
# model's graft.classes from them, although labels 0-4 have no image.
def write_idx(path, arr):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, arr.ndim]))
        for n in arr.shape:
            f.write(int(n).to_bytes(4, "big"))
        f.write(arr.astype(np.uint8).tobytes())


x_all, y_all = fmnist("test", list(range(10)))
keep = np.isin(y_all, [5, 6])
sub_x, sub_y = x_all[keep][:60], y_all[keep][:60]
sx, sy = os.path.join(d, "sub-images"), os.path.join(d, "sub-labels")
write_idx(sx, sub_x)
write_idx(sy, sub_y)
m56 = os.path.join(d, "m56.onnx")
code, out, err = graft("train", "--classes", "5,6", "--per-class", "20", "--epochs", "1",
                       "--quiet", "--out", m56)
check(code == 0, "train --classes 5,6 (%d %r)" % (code, err[:200]))
code, out, err = graft("eval", m56, "--idx-images", sx, "--idx-labels", sy, "--json", "-")
try:
    j = json.loads(out) if code == 0 else {}
    check(code == 0 and j.get("n") == len(sub_y),
          "eval on IDX files of classes 5 and 6 only: exit %d, n %s of %d (%r)"
          % (code, j.get("n"), len(sub_y), err[:200]))
except ValueError as e:
    check(False, "eval on the class 5/6 subset prints JSON (%s)" % e)

finish()
