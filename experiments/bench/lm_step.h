// The language-model case of bench_train: one training step of a small DecoderLM (causal
// self-attention, SwiGLU MLP, cross-entropy, AdamW with decay / no-decay groups). The sizes are
// fixed (README, Benchmarks): vocab 512, D 256, 2 layers, H 8, d 32, L 256, B 8; GQA G 2; MLA
// r 128; MLA with decoupled RoPE r 128, d_R 16.
#pragma once
#include <benchmark/benchmark.h>

#include <string>

#include "core/autocast.h"
#include "core/device.h"

namespace latte::bench {

// kind: mha, gqa, mla or mla_rope; the step runs under autocast(precision).
void BM_lm_step(benchmark::State& state, const std::string& kind, Device device,
                autocast::Precision precision = autocast::Precision::Float32);

}  // namespace latte::bench
