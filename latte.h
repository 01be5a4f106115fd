// The whole public API in one include: #include <latte/latte.h> (installed as include/latte/latte.h;
// in the build tree the same path works through build/include/latte). For a smaller include,
// name a header under the same prefix, e.g. #include <latte/nn/mha.h>.
// Left out as internals: backends/common/*, core/host_device.h, core/random_counter.h,
// core/parse.h, ops/checks.h and nn/json.h (each still installed and usable alone).
#pragma once

// core: tensors, devices, memory, random numbers, autograd and the hooks for custom ops
#include "core/autograd.h"
#include "core/backend.h"
#include "core/cuda.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/factory.h"
#include "core/node.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/storage.h"
#include "core/tensor.h"

// ops: every op, and gradcheck for checking your own
#include "ops/gradcheck.h"
#include "ops/ops.h"

// nn: modules, attention, conversion, decoding, optimizers, weights, module gradcheck
#include "nn/absorbed.h"
#include "nn/attention.h"
#include "nn/chunked_attention.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/gqa.h"
#include "nn/gradcheck.h"
#include "nn/linear.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/serialize.h"
