/*
 * train_ops.c — the float32 instance of the training ops (train_ops_impl.h),
 * with OpenBLAS sgemm for the matmuls. Declarations and conventions:
 * train_ops.h; the double instance lives in tests/unit/test_train_ops.c.
 */
#include "steer_train.h"
#include "train_ops.h"

#include <cblas.h>

#define REAL float
#define R_(name) name##_f32
#define TRAIN_OPS_SGEMM 1
#include "train_ops_impl.h"
