/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_batch_normalization = {.op_type = "BatchNormalization"};
