/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_reshape = {.op_type = "Reshape"};
const graft_op_def graft__op_flatten = {.op_type = "Flatten"};
const graft_op_def graft__op_transpose = {.op_type = "Transpose"};
const graft_op_def graft__op_squeeze = {.op_type = "Squeeze"};
const graft_op_def graft__op_unsqueeze = {.op_type = "Unsqueeze"};
const graft_op_def graft__op_concat = {.op_type = "Concat"};
const graft_op_def graft__op_shape = {.op_type = "Shape"};
const graft_op_def graft__op_gather = {.op_type = "Gather"};
const graft_op_def graft__op_slice = {.op_type = "Slice"};
const graft_op_def graft__op_cast = {.op_type = "Cast"};
const graft_op_def graft__op_identity = {.op_type = "Identity"};
const graft_op_def graft__op_dropout = {.op_type = "Dropout"};
const graft_op_def graft__op_constant = {.op_type = "Constant"};
