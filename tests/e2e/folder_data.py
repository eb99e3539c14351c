"""e2e/folder: training and evaluating from folders of PNG images (one
subfolder per class, named after it): graft train --data/--eval-data, then
graft eval --data on the exported model matches its classes by name and
reproduces train's test accuracy; the images are resized from 32x32 to the
backbone's 28x28."""
import json
import os
import shutil

import numpy as np

from e2e_util import BACKBONE, check, finish, fmnist, graft, require_cli, WORK, write_png

require_cli()


root = os.path.join(WORK, "folders")
shutil.rmtree(root, ignore_errors=True)
names = {5: "sandal", 7: "sneaker", 9: "ankle_boot"}
for split, per in (("train", 30), ("test", 60)):
    x, y = fmnist(split, list(names))
    for k, (c, name) in enumerate(names.items()):
        d = os.path.join(root, split, name)
        os.makedirs(d)
        for i, idx in enumerate(np.where(y == k)[0][:per]):
            # Pad to 32x32 so that loading has to resize.
            write_png(os.path.join(d, "%03d.png" % i), np.pad(x[idx], 2))

out = os.path.join(root, "shoes.onnx")
report = os.path.join(root, "shoes.json")
code, stdout, err = graft("train", "--model", BACKBONE, "--data", os.path.join(root, "train"),
                          "--eval-data", os.path.join(root, "test"), "--size", "28x28",
                          "--epochs", "30", "--lr", "0.003", "--seed", "1", "--quiet",
                          "--out", out, "--json", report)
print(stdout)
check(code == 0, "train from folders exits 0 %s" % err.strip())
if code == 0:
    with open(report) as f:
        rep = json.load(f)
    check(rep["classes"] == sorted(names.values()), "class names are the sorted folder names (%s)"
          % rep["classes"])
    check(rep["train_images"] == 90 and rep["test_images"] == 180, "image counts 90/180")
    acc = rep["fine_tuned"]["test"]["accuracy"]
    check(acc > 0.6, "three shoe classes from 30 images each: accuracy %.3f > 0.6" % acc)
    code, stdout, err = graft("eval", out, "--data", os.path.join(root, "test"), "--json")
    check(code == 0, "graft eval --data exits 0 %s" % err.strip())
    if code == 0:
        ev = json.loads(stdout)
        check(abs(ev["accuracy"] - acc) < 1e-9, "graft eval reproduces train's accuracy (%.4f)"
              % ev["accuracy"])
    # A folder missing one of the model's classes is refused by name.
    shutil.rmtree(os.path.join(root, "test", "sneaker"))
    code, stdout, err = graft("eval", out, "--data", os.path.join(root, "test"))
    check(code == 1 and "sneaker" in err and len(err.splitlines()) == 1,
          "eval names the missing class folder (%r)" % err.strip())
finish()
