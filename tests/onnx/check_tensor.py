#!/usr/bin/python3
"""usage: check_tensor.py FILE.pb NAME ONNX_DTYPE DIMS VALUES
DIMS and VALUES comma-separated (DIMS may be empty for a scalar). Checks, with
the onnx package, that the TensorProto graft wrote holds exactly these values
(for float16, the float32 values rounded by numpy). Exit 0 when equal."""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

path, name, dtype, dims, values = sys.argv[1:6]
t = onnx.TensorProto()
with open(path, "rb") as f:
    t.ParseFromString(f.read())
want_dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[int(dtype)]
shape = tuple(int(d) for d in dims.split(",") if d)
want = np.array([float(v) for v in values.split(",") if v], np.float64)
want = want.astype(np.float32).astype(want_dtype).reshape(shape)
got = numpy_helper.to_array(t)
ok = t.name == name and t.data_type == int(dtype) and got.shape == shape and \
    got.dtype == want.dtype and got.tobytes() == want.tobytes()
if not ok:
    print("FAIL", t.name, t.data_type, got.dtype, got.shape, got.flatten()[:8], want.flatten()[:8])
sys.exit(0 if ok else 1)
