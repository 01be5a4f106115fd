#include "experiments/bench/lm_step.h"

#include "experiments/bench/timed_steps.h"
#include "nn/decoder_lm.h"
#include "nn/optim.h"
#include "nn/param_groups.h"
#include "ops/ops.h"

namespace latte::bench {

void BM_lm_step(benchmark::State& state, const std::string& kind, Device device, autocast::Precision precision) {
    const int64_t B = 8, L = 256;
    nn::DecoderLMConfig c;
    c.vocab = 512;
    c.width = 256;
    c.layers = 2;
    c.heads = 8;
    c.head_dim = 32;
    c.attention = nn::parse_attention_kind(kind);
    c.kv_heads = kind == "gqa" ? 2 : 0;
    c.rank = kind == "mla" || kind == "mla_rope" ? 128 : 0;
    c.rope_dim = kind == "mla_rope" ? 16 : 0;
    Generator gen(0);
    nn::DecoderLM lm(c, gen);
    lm.to(device);
    // Random tokens and targets (uniform, truncated to ids): the step's cost does not depend on them.
    const Tensor ids = to(to(mul(rand({B, L}, gen), double(c.vocab) - 1e-6), DType::Int64), device);
    const Tensor targets = to(to(mul(rand({B, L}, gen), double(c.vocab) - 1e-6), DType::Int64), device);
    nn::AdamW optimizer(nn::param_groups(lm, 0.1), 1e-3);
    Backend& backend = backend_for(device);
    auto step = [&] {
        {
            const autocast::Guard guard(precision);
            lm.loss(ids, targets).backward();
        }
        optimizer.step();
        optimizer.zero_grad();
        backend.synchronize();
    };
    run_timed_steps(state, device, step, double(B * L));
    // Bytes a decoder caches per token, all layers, float32.
    state.counters["KV_bytes_per_token"] =
        double(lm.layer(0).attn->kv_cache_per_position() * c.layers * int64_t(sizeof(float)));
}

}  // namespace latte::bench
