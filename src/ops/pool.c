/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_max_pool = {.op_type = "MaxPool"};
const graft_op_def graft__op_average_pool = {.op_type = "AveragePool"};
const graft_op_def graft__op_global_average_pool = {.op_type = "GlobalAveragePool"};
const graft_op_def graft__op_global_max_pool = {.op_type = "GlobalMaxPool"};
