/* PLACEHOLDER: not implemented yet. */
#include "ops/op.h"

const graft_op_def graft__op_gemm = {.op_type = "Gemm"};
const graft_op_def graft__op_matmul = {.op_type = "MatMul"};
