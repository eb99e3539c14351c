/* graft/graft.h - umbrella header: transfer learning on ONNX models.
 *
 *   import (onnx.h) -> cut + new head + freeze (surgery.h) -> train (train.h)
 *   -> export (onnx.h); the executor (exec.h) runs any step's graph.
 */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#define GRAFT_VERSION_STRING "0.1.0"

#include "graft/data.h"
#include "graft/exec.h"
#include "graft/graph.h"
#include "graft/onnx.h"
#include "graft/status.h"
#include "graft/surgery.h"
#include "graft/tensor.h"
#include "graft/train.h"

#endif
