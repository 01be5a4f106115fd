// Every op of latte, for users: #include "ops/ops.h".
#pragma once
#include "../core/autograd.h"
#include "../core/factory.h"
#include "../core/random.h"
#include "../core/tensor.h"
#include "elementwise.h"
#include "linalg.h"
#include "loss.h"
#include "matmul.h"
#include "movement.h"
#include "reduce.h"
#include "softmax.h"
