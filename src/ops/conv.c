/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_conv = {.op_type = "Conv"};
const graft_op_def graft__op_fused_conv = {.op_type = "FusedConv"};
