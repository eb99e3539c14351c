"""e2e/inspect_nodes: `graft inspect --nodes` lists every node of the file by
name with what it reads and writes (checked against the file read with onnx),
shapes at batch 1 where graft can plan the model, and the names it lists are
what `graft train --cut` takes; `graft inspect --ops` is docs/OPS.md."""
import json
import os

import onnx

from e2e_util import BACKBONE, WORK, check, finish, graft, require_cli

require_cli()
src = onnx.load(BACKBONE)
inits = {t.name for t in src.graph.initializer}

code, out, err = graft("inspect", "--nodes", BACKBONE)
check(code == 0, "inspect --nodes exits 0 %s" % err.strip())
lines = out.splitlines()
start = [i for i, l in enumerate(lines) if l.startswith("nodes ")]
rows = lines[start[0] + 1:] if start else []
check(len(rows) == len(src.graph.node), "one row per node (%d rows, %d nodes)"
      % (len(rows), len(src.graph.node)))
for n, row in zip(src.graph.node, rows):
    want_in = [i for i in n.input if i and i not in inits]
    head, _, writes = row.partition(" -> ")
    check(row.split()[0] == n.op_type and (" %s:" % n.name) in row,
          "row names %s '%s' (%r)" % (n.op_type, n.name, row[:80]))
    check(all(i in head for i in want_in) and all(o in writes for o in n.output),
          "row of '%s' lists what it reads and writes" % n.name)
conv = [r for r in rows if r.split()[0] == "Conv"][0]
check(conv.endswith("[N,32,28,28]"), "first Conv's output shape at batch 1 (%r)" % conv[-20:])

code, out, err = graft("inspect", "--json", "--nodes", BACKBONE)
try:
    j = json.loads(out)
    nl = j["node_list"]
    check([e["name"] for e in nl] == [n.name for n in src.graph.node], "JSON node_list names")
    check(nl[0]["inputs"] == list(src.graph.node[0].input), "JSON node inputs, weights included")
except (ValueError, KeyError, IndexError) as e:
    check(False, "inspect --json --nodes is JSON with node_list (%s)" % e)

# a listed name is a valid --cut: the last MaxPool's output (4-D: pooled head)
pool = [n for n in src.graph.node if n.op_type == "MaxPool"][-1]
out_model = os.path.join(WORK, "cut_by_listed_name.onnx")
code, out, err = graft("train", "--cut", pool.name, "--classes", "5,6", "--per-class", "5",
                       "--epochs", "1", "--quiet", "--out", out_model)
check(code == 0 and os.path.exists(out_model), "train --cut %s (a listed node name) %s"
      % (pool.name, err.strip()))
# graft inspect --ops is docs/OPS.md, and lists what the op table runs
code, out, err = graft("inspect", "--ops")
check(code == 0 and "| Conv | ai.onnx |" in out and "| Gemm | ai.onnx |" in out,
      "inspect --ops prints the op table %s" % err.strip())
docs = os.path.join(os.path.dirname(BACKBONE), "..", "docs", "OPS.md")
with open(docs) as f:
    check(f.read() == out, "docs/OPS.md is up to date (regenerate: graft inspect --ops > docs/OPS.md)")
for op in {n.op_type for n in src.graph.node}:
    check("| %s | ai.onnx |" % op in out, "the backbone's %s is listed" % op)
code, out, err = graft("inspect", "--ops", BACKBONE)
check(code == 2 and len(err.splitlines()) == 1 and "--ops" in err, "--ops with a MODEL is refused")
finish()
