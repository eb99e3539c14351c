"""e2e/backbone_bytes: the frozen backbone's initializers in the exported
model are the source's, byte for byte (serialized TensorProto) and value for
value (numpy); only the old classifier's are gone."""
import numpy as np
import onnx
from onnx import numpy_helper

from e2e_util import BACKBONE, FT_MODEL, check, finish

src = onnx.load(BACKBONE)
out = onnx.load(FT_MODEL)
src_init = {t.name: t for t in src.graph.initializer}
out_init = {t.name: t for t in out.graph.initializer}
classifier = {"fc.weight", "fc.bias"}
kept = [n for n in src_init if n not in classifier]
check(len(kept) >= 6, "backbone initializers in the source (%d)" % len(kept))
for name in kept:
    if not check(name in out_init, "%s exported" % name):
        continue
    a, b = src_init[name], out_init[name]
    same_bytes = a.SerializeToString() == b.SerializeToString()
    same_values = (numpy_helper.to_array(a).dtype == numpy_helper.to_array(b).dtype and
                   np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b)))
    check(same_bytes and same_values, "%s byte-identical (TensorProto %s, values %s)"
          % (name, same_bytes, same_values))
for name in classifier:
    check(name not in out_init, "old classifier %s removed" % name)
new = [n for n in out_init if n not in src_init]
check(len(new) >= 2, "the new head has its own parameters (%s)" % ", ".join(sorted(new)))
finish()
