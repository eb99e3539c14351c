#!/usr/bin/python3
"""Exports the classic torchvision families to ONNX, as torch.onnx.export writes them.

    /usr/bin/python3 tools/export_families.py OUT_DIR [FAMILY ...] [--opset 13|17 ...]
        [--size N] [--keep] [--list]

For each family and opset it writes OUT_DIR/<family>-op<N>/ with
  model.onnx                       torch.onnx.export of the torchvision model in
                                   eval mode: input "input" [batch,3,S,S], output
                                   "logits" [batch,1000], dynamic batch axis,
                                   do_constant_folding left at its default
  test_data_set_0/input_0.pb       a fixed random input, batch 2 (N(0,1), seed 0)
  test_data_set_0/output_0.pb      PyTorch's output on it (float32)
  export.json                      family, opset, input size, seconds, versions
No downloads: the weights are torchvision's random initialisation under a
fixed seed (weights=None), so nothing but the architecture is "classic"; the
BatchNorm layers get random affine parameters and the running statistics of
one random calibration batch (fresh ones are the identity, which would hide
BN-folding mistakes and lets deep nets' activations grow without bound).

Input sizes (--size overrides): the smallest multiple of 32 each architecture
takes cleanly, so that the test suite stays fast (see docs/FAMILIES.md):
  64 for the nets that end in a global (1x1 adaptive) average pool: ResNet,
  MobileNet, ShuffleNet, EfficientNet, DenseNet, GoogLeNet, SqueezeNet;
  75 for Inception v3 (the smallest input it takes; it was trained at 299);
  224 for VGG16 and AlexNet: their AdaptiveAvgPool2d to 7x7 / 6x6 exports
  (as an AveragePool) only when the last feature map is a multiple of that,
  and 224 is the smallest input that gives 7x7 / 6x6.

--keep leaves a folder alone whose export.json records the same family, opset,
size and version of this script (tests/families caches its exports so).

Exit status: 0 when every family asked for was written, kept or skipped (a
family the installed torchvision lacks is skipped with a line saying so), 77
when torch or torchvision cannot be imported at all, 1 on an export error, 2
on a bad command line.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

FAMILIES = [
    "vgg16", "resnet18", "resnet50", "inception_v3", "googlenet", "densenet121",
    "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x1_0",
    "efficientnet_b0", "alexnet",
]

# the input size each family is exported at (height = width)
SIZES = {
    "vgg16": 224, "resnet18": 64, "resnet50": 64, "inception_v3": 75, "googlenet": 64,
    "densenet121": 64, "mobilenet_v2": 64, "mobilenet_v3_small": 64, "squeezenet1_1": 64,
    "shufflenet_v2_x1_0": 64, "efficientnet_b0": 64, "alexnet": 224,
}

# constructor keywords: no pretrained weights, and the auxiliary classifiers of
# GoogLeNet / Inception v3 off (in eval mode they are unused anyway; without
# weights torchvision would otherwise warn and build them).
EXTRA = {
    "inception_v3": {"aux_logits": False, "init_weights": True},
    "googlenet": {"aux_logits": False, "init_weights": True},
}


def tensor_pb(path, name, array):
    from onnx import numpy_helper
    t = numpy_helper.from_array(array, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def calibrate_batchnorm(model, size):
    """Fresh BatchNorm layers are the identity (mean 0, var 1, scale 1, shift
    0): that would let an importer get BN folding wrong unnoticed, and in deep
    nets (Inception v3: 1e10 logits) the activations drift without bound. So
    the affine parameters get mild random values and the running statistics
    are those of one calibration batch (16 random images, its own seed: tiny late feature
    maps need that many for stable statistics), as a
    trained net's BN layers hold statistics of real activations."""
    import torch
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        if m.affine:
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features) + 0.5)
                m.bias.copy_(torch.randn(m.num_features) * 0.1)
        m.reset_running_stats()
        m.momentum = 1.0  # running statistics := this batch's
    g = torch.Generator().manual_seed(99)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, size, size, generator=g))
    for m in bns:
        m.momentum = 0.1


def script_sha():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def export_one(family, opset, size, out_dir, keep):
    import numpy as np
    import torch
    import torchvision

    ctor = getattr(torchvision.models, family, None)
    if ctor is None:
        print(f"SKIP {family}: torchvision {torchvision.__version__} has no models.{family}")
        return "skip"
    dest = os.path.join(out_dir, f"{family}-op{opset}")
    if keep:
        try:
            with open(os.path.join(dest, "export.json")) as f:
                old = json.load(f)
            if (old.get("family"), old.get("opset"), old.get("size"), old.get("script")) == \
                    (family, opset, size, script_sha()) and \
                    os.path.exists(os.path.join(dest, "test_data_set_0", "output_0.pb")):
                print(f"{family}-op{opset}: kept (exported earlier in {old.get('seconds')} s)")
                return "kept"
        except (OSError, ValueError):
            pass
    t0 = time.time()
    torch.manual_seed(0)
    model = ctor(weights=None, **EXTRA.get(family, {}))
    calibrate_batchnorm(model, size)
    model.eval()
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(2, 3, size, size, generator=g)
    with torch.no_grad():
        y = model(x)
    if not isinstance(y, torch.Tensor):  # named tuples of the aux-logit nets
        y = y[0]
    tmp = tempfile.mkdtemp(prefix=f".{family}-op{opset}-", dir=out_dir)
    try:
        model_path = os.path.join(tmp, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(model, x, model_path, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        os.makedirs(os.path.join(tmp, "test_data_set_0"))
        tensor_pb(os.path.join(tmp, "test_data_set_0", "input_0.pb"), "input",
                  x.numpy().astype(np.float32))
        tensor_pb(os.path.join(tmp, "test_data_set_0", "output_0.pb"), "logits",
                  y.numpy().astype(np.float32))
        seconds = time.time() - t0
        with open(os.path.join(tmp, "export.json"), "w") as f:
            json.dump({"family": family, "opset": opset, "size": size, "batch": 2,
                       "seconds": round(seconds, 2), "script": script_sha(), "torch": torch.__version__,
                       "torchvision": torchvision.__version__}, f, indent=1)
            f.write("\n")
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.rename(tmp, dest)  # complete folders only: a killed export leaves none
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{family}-op{opset}: {size}x{size}, {seconds:.1f} s -> {dest}")
    return "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("families", nargs="*", help="family names (default: all)")
    ap.add_argument("--opset", type=int, action="append", choices=[13, 17],
                    help="opset to export (repeatable; default 13 and 17)")
    ap.add_argument("--size", type=int, help="input height and width (default: per family)")
    ap.add_argument("--keep", action="store_true",
                    help="keep an existing export of the same family, opset, size and script")
    ap.add_argument("--list", action="store_true", help="print the families and sizes and exit")
    a = ap.parse_args()
    if a.list:
        for f in FAMILIES:
            print(f, SIZES[f])
        return 0
    if not a.out_dir:
        ap.error("OUT_DIR is required")
    fams = a.families or FAMILIES
    for f in fams:
        if f not in FAMILIES:
            ap.error(f"unknown family {f} (one of {', '.join(FAMILIES)})")
    os.makedirs(a.out_dir, exist_ok=True)
    try:
        import torch
        import torchvision  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        print(f"SKIP: cannot export ({e}; Debian: python3-torch python3-torchvision python3-onnx)")
        return 77
    torch.set_num_threads(2)
    rc = 0
    for f in fams:
        for op in a.opset or [13, 17]:
            try:
                export_one(f, op, a.size or SIZES[f], a.out_dir, a.keep)
            except Exception as e:  # one line naming the family, then go on
                print(f"export_families: {f}-op{op}: {type(e).__name__}: {e}", file=sys.stderr)
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
