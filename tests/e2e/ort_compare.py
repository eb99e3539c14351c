"""e2e/ort: the exported fine-tuned model (and the source backbone) run in
ONNX Runtime with outputs within 1e-4 of `graft run` on the same inputs, at
batch 16 and batch 1; graft eval's accuracy equals the accuracy computed from
ONNX Runtime's outputs over the whole test set. Skips (77) without node or
onnxruntime-node."""
import json
import os
import shutil

import numpy as np

from e2e_util import (BACKBONE, FT_CLASSES, FT_MODEL, FT_REPORT, FMNIST, WORK, check, finish,
                      fmnist, graft, manifest_pp, ort_available, ort_run, preprocess, read_tensor,
                      require_cli, skip, write_tensor)

require_cli()
why = ort_available()
if why:
    skip(why)

pp = manifest_pp()
x_test, y_test = fmnist("test", FT_CLASSES)
work = os.path.join(WORK, "ort")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

rng = np.random.default_rng(1)
pick = rng.choice(len(x_test), 16, replace=False)
cases = {
    "batch16": preprocess(x_test[pick], pp),
    "batch1": preprocess(x_test[pick[:1]], pp),
    # Off-distribution values: the comparison must not depend on nice inputs.
    "noise4": rng.normal(0, 3, size=(4, 1, 28, 28)).astype(np.float32),
}
for model_name, model in (("fine-tuned", FT_MODEL), ("backbone", BACKBONE)):
    for case, x in cases.items():
        d = os.path.join(work, "%s_%s" % (os.path.basename(model), case))
        os.makedirs(d)
        inp = os.path.join(d, "input_0.pb")
        write_tensor(inp, x, "input")
        code, out, err = graft("run", model, "--in", inp, "--out-dir", os.path.join(d, "graft"))
        check(code == 0, "%s %s: graft run exits 0 %s" % (model_name, case, err.strip()))
        code, err = ort_run(model, os.path.join(d, "ort"), [inp])
        if not check(code == 0, "%s %s: ONNX Runtime runs it %s" % (model_name, case,
                                                                    err.strip()[-300:])):
            continue
        tg, g = read_tensor(os.path.join(d, "graft", "output_0.pb"))
        tr, r = read_tensor(os.path.join(d, "ort", "output_0.pb"))
        check(tg.name == tr.name, "%s %s: output name %r" % (model_name, case, tg.name))
        check(g.shape == r.shape and g.dtype == r.dtype,
              "%s %s: shape %s dtype %s (ORT %s %s)" % (model_name, case, g.shape, g.dtype,
                                                       r.shape, r.dtype))
        if g.shape == r.shape:
            diff = float(np.abs(g.astype(np.float64) - r).max())
            # Probabilities are within [0,1]: 1e-4 absolute. Logits scale with
            # their range: 1e-4 of the largest magnitude.
            tol = 1e-4 * max(1.0, float(np.abs(r).max()))
            check(diff <= tol, "%s %s: max |graft - ORT| = %.3g <= %.3g" % (model_name, case,
                                                                             diff, tol))

# Accuracy over every test image of classes 5-9: ORT's argmax vs graft eval.
all_in = os.path.join(work, "all_input_0.pb")
write_tensor(all_in, preprocess(x_test, pp), "input")
code, err = ort_run(FT_MODEL, os.path.join(work, "all_ort"), [all_in])
if check(code == 0, "ONNX Runtime on all %d test images" % len(x_test)):
    _, probs = read_tensor(os.path.join(work, "all_ort", "output_0.pb"))
    ort_acc = float((probs.argmax(1) == y_test).mean())
    code, out, err = graft("eval", FT_MODEL, "--idx-images",
                           os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"), "--idx-labels",
                           os.path.join(FMNIST, "t10k-labels-idx1-ubyte.gz"), "--json")
    check(code == 0, "graft eval --json exits 0 %s" % err.strip())
    try:
        ev = json.loads(out)
        acc = float(ev["accuracy"])
        # Ties in argmax may fall either way: allow 2 images of 5000.
        check(abs(acc - ort_acc) <= 2.0 / len(x_test) + 1e-9,
              "graft eval accuracy %.4f == ONNX Runtime's %.4f" % (acc, ort_acc))
        with open(FT_REPORT) as f:
            rep = json.load(f)["fine_tuned"]["test"]["accuracy"]
        check(abs(rep - acc) < 1e-9, "graft train's test accuracy %.4f == graft eval's" % rep)
        cm = np.array(ev.get("confusion", []))
        check(cm.shape == (5, 5) and cm.sum() == len(x_test), "5x5 confusion over %d images"
              % len(x_test))
    except (ValueError, KeyError) as e:
        check(False, "graft eval JSON has accuracy and confusion (%s)" % e)
finish()
