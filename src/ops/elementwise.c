/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_add = {.op_type = "Add"};
const graft_op_def graft__op_sub = {.op_type = "Sub"};
const graft_op_def graft__op_mul = {.op_type = "Mul"};
const graft_op_def graft__op_div = {.op_type = "Div"};
const graft_op_def graft__op_pow = {.op_type = "Pow"};
const graft_op_def graft__op_max = {.op_type = "Max"};
const graft_op_def graft__op_min = {.op_type = "Min"};
const graft_op_def graft__op_sum = {.op_type = "Sum"};
const graft_op_def graft__op_sqrt = {.op_type = "Sqrt"};
const graft_op_def graft__op_exp = {.op_type = "Exp"};
const graft_op_def graft__op_log = {.op_type = "Log"};
const graft_op_def graft__op_neg = {.op_type = "Neg"};
const graft_op_def graft__op_abs = {.op_type = "Abs"};
const graft_op_def graft__op_reciprocal = {.op_type = "Reciprocal"};
const graft_op_def graft__op_erf = {.op_type = "Erf"};
