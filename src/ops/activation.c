/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_relu = {.op_type = "Relu"};
const graft_op_def graft__op_leaky_relu = {.op_type = "LeakyRelu"};
const graft_op_def graft__op_clip = {.op_type = "Clip"};
const graft_op_def graft__op_sigmoid = {.op_type = "Sigmoid"};
const graft_op_def graft__op_hard_sigmoid = {.op_type = "HardSigmoid"};
const graft_op_def graft__op_hard_swish = {.op_type = "HardSwish"};
const graft_op_def graft__op_tanh = {.op_type = "Tanh"};
const graft_op_def graft__op_elu = {.op_type = "Elu"};
const graft_op_def graft__op_selu = {.op_type = "Selu"};
