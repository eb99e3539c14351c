"""e2e/train: a small fine-tuning run end to end (the fixture the other e2e
tests examine): 20 labelled images per class of Fashion-MNIST 5-9 on the
default backbone, with a hidden layer and dropout, evaluated on every test
image of those classes. Also checks that the same seed gives the same model
and that augmentation (backbone recomputed per batch) runs."""
import json
import os
import re

from e2e_util import (BACKBONE, FT_MODEL, FT_REPORT, WORK, check, finish, graft, require_cli)

require_cli()
for p in (FT_MODEL, FT_REPORT):
    if os.path.exists(p):
        os.remove(p)

common = ["--model", BACKBONE, "--classes", "5,6,7,8,9", "--per-class", "20",
          "--hidden", "32", "--dropout", "0.2", "--epochs", "25", "--batch", "16",
          "--optimizer", "adam", "--lr", "0.003", "--val-split", "0.2", "--patience", "8",
          "--seed", "7"]
code, out, err = graft("train", *common, "--out", FT_MODEL, "--json", FT_REPORT)
print(out)
print(err)
check(code == 0, "graft train exits 0 (got %d)" % code)
check(err.strip() == "", "graft train prints nothing on stderr")
check(os.path.isfile(FT_MODEL), "the fine-tuned model is written")
epochs = re.findall(r"^epoch +\d+/\d+ +loss [0-9.]+ +acc [0-9.]+ +val_loss [0-9.]+ +val_acc [0-9.]+ +[0-9.]+s",
                    out, re.M)
check(len(epochs) >= 1, "one progress line per epoch with loss, acc, val loss/acc, seconds (%d)"
      % len(epochs))
check("fine-tuned test accuracy" in out, "the metrics are printed")
report = {}
if check(os.path.isfile(FT_REPORT), "--json report written"):
    with open(FT_REPORT) as f:
        report = json.load(f)
test = report.get("fine_tuned", {}).get("test", {})
acc = test.get("accuracy", 0.0)
check(report.get("test_images") == 5000, "evaluated on all 5000 t10k images of classes 5-9 (%s)"
      % report.get("test_images"))
check(report.get("classes") == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
      "class names from the manifest (%s)" % report.get("classes"))
# 100 images of unseen classes on frozen features: a working pipeline gives
# well above chance (0.2); a broken cut, freeze or optimizer does not.
check(acc > 0.6, "test accuracy %.4f > 0.6" % acc)
check(len(os.listdir(WORK)) == len([f for f in os.listdir(WORK) if not f.endswith(".tmp")]),
      "no temporary files left")

# Same seed, same model (byte for byte).
again = os.path.join(WORK, "ft_again.onnx")
code, out2, err2 = graft("train", *common, "--out", again, "--quiet")
check(code == 0, "second run exits 0 (%s)" % err2.strip())
if os.path.isfile(again):
    with open(FT_MODEL, "rb") as a, open(again, "rb") as b:
        check(a.read() == b.read(), "same seed gives a byte-identical model")
    os.remove(again)

# Augmentation recomputes the backbone for every batch.
aug = os.path.join(WORK, "ft_aug.onnx")
code, out3, err3 = graft("train", "--model", BACKBONE, "--classes", "5,6,7,8,9",
                         "--per-class", "10", "--epochs", "3", "--seed", "3",
                         "--augment", "flip,rotate=0.1,zoom=0.1", "--out", aug)
print(out3)
check(code == 0, "training with --augment exits 0 (%s)" % err3.strip())
check(os.path.isfile(aug), "augmented model written")
finish()
