"""Shared helpers for the end-to-end tests (run with Debian's /usr/bin/python3).

The tests drive the `graft` program the way a user does and check its results
against independent tools: onnx's checker and numpy (python3-onnx), and ONNX
Runtime (npm onnxruntime-node) through ort_run.js.
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np

SKIP = 77
CLI = os.environ.get("GRAFT_CLI", "")
SRC = os.environ.get("GRAFT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.environ.get("GRAFT_E2E_DIR", "/tmp/graft-e2e")
ORT_DIR = os.environ.get("GRAFT_ORT_DIR", "")
NODE = os.environ.get("GRAFT_NODE", "") or shutil.which("node") or ""
FMNIST = "/usr/share/datasets/fashion-mnist"
BACKBONE = os.path.join(SRC, "models", "fmnist_cnn.onnx")
MANIFEST = os.path.join(SRC, "models", "fmnist_cnn.json")
# The model the e2e/train fixture exports and the other tests examine.
FT_MODEL = os.path.join(WORK, "ft.onnx")
FT_REPORT = os.path.join(WORK, "ft.json")
FT_CLASSES = [5, 6, 7, 8, 9]

_failures = []


def check(cond, what):
    """Records a failed expectation (and prints it) without stopping the test."""
    if cond:
        print("ok    " + what)
    else:
        print("FAIL  " + what)
        _failures.append(what)
    return cond


def finish():
    if _failures:
        print("%d check(s) failed" % len(_failures))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def require_cli():
    if not CLI or not os.access(CLI, os.X_OK):
        print("graft CLI not found (GRAFT_CLI=%r)" % CLI)
        sys.exit(1)
    os.makedirs(WORK, exist_ok=True)


def graft(*args, timeout=900):
    """Runs graft; returns (exit code, stdout, stderr)."""
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def write_png(path, img):
    """8-bit greyscale PNG (uint8 [H,W]), written by hand (no imaging library needed)."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fmnist(split, classes):
    """Images (uint8 [n,28,28]) and labels relabelled 0..k-1 in the order of classes."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(FMNIST, prefix + "-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(FMNIST, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
    keep = np.isin(y, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([remap[int(v)] for v in y[keep]], dtype=np.int64)


def preprocess(images, pp):
    """uint8 [n,H,W] -> float32 [n,1,H,W] the way the manifest says (28x28, grey)."""
    x = images.astype(np.float32) * np.float32(pp["scale"])
    x = (x - np.float32(pp["mean"][0])) / np.float32(pp["std"][0])
    return x[:, None, :, :].astype(np.float32)


def manifest_pp():
    with open(MANIFEST) as f:
        return json.load(f)["preprocess"]


def write_tensor(path, array, name):
    from onnx import numpy_helper
    t = numpy_helper.from_array(array, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def read_tensor(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t, numpy_helper.to_array(t)


def ort_available():
    """None when node + onnxruntime-node can run, else why not."""
    if not NODE:
        return "node is not installed"
    mod = os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")
    if not ORT_DIR or not os.path.isdir(mod):
        return "onnxruntime-node not found in GRAFT_ORT_DIR=%r (run tools/setup.sh)" % ORT_DIR
    p = subprocess.run([NODE, "-e", "require('onnxruntime-node')"], capture_output=True,
                       env=dict(os.environ, NODE_PATH=os.path.join(ORT_DIR, "node_modules")))
    if p.returncode != 0:
        return "onnxruntime-node does not load: " + p.stderr.decode(errors="replace")[:200]
    return None


def ort_run(model, out_dir, inputs):
    """Runs model in ONNX Runtime on TensorProto files; returns (code, stderr)."""
    p = subprocess.run([NODE, os.path.join(SRC, "tests", "e2e", "ort_run.js"), model, out_dir]
                       + list(inputs), capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, NODE_PATH=os.path.join(ORT_DIR, "node_modules")))
    return p.returncode, p.stderr
