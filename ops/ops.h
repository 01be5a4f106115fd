// Every op of latte, for users: #include "ops/ops.h".
#pragma once
#include "core/autograd.h"
#include "core/factory.h"
#include "core/random.h"
#include "core/tensor.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/movement.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
