// The whole public API in one include: #include <latte/latte.h> (installed as include/latte/latte.h;
// in the build tree the same path works through build/include/latte). For a smaller include,
// name a header under the same prefix, e.g. #include <latte/nn/mha.h>.
// Left out as internals (still installed, and each compiles alone): backends/common/*,
// core/atomic_file.h, core/distributed_transport.h, core/host_device.h, core/parse.h, core/random_counter.h, ops/checks.h, ops/index_checks.h,
// nn/json.h, nn/state_text.h. check-install.sh fails when a header is in neither list.
#pragma once

// core: tensors, devices, memory, random numbers, autograd and the hooks for custom ops
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/backend.h"
#include "core/cuda.h"
#include "core/device.h"
#include "core/distributed.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/factory.h"
#include "core/node.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/storage.h"
#include "core/tensor.h"

// ops: every op (ops/ops.h gathers them; each is named here too), and gradcheck for your own
#include "ops/activation.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/gradcheck.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/movement.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/reduce.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/where.h"

// nn: modules, attention, conversion, decoding, optimizers, weights, module gradcheck, language-model blocks
#include "nn/absorbed.h"
#include "nn/attention.h"
#include "nn/cached_decoder.h"
#include "nn/checkpoint.h"
#include "nn/chunked_attention.h"
#include "nn/container.h"
#include "nn/data_parallel.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/decoder_lm.h"
#include "nn/embedding.h"
#include "nn/flash_attention.h"
#include "nn/gqa.h"
#include "nn/gradcheck.h"
#include "nn/linear.h"
#include "nn/lm_tasks.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "nn/mlp.h"
#include "nn/module.h"
#include "nn/norm.h"
#include "nn/optim.h"
#include "nn/param_groups.h"
#include "nn/serialize.h"
#include "nn/transformer.h"
