/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_softmax = {.op_type = "Softmax"};
const graft_op_def graft__op_log_softmax = {.op_type = "LogSoftmax"};
