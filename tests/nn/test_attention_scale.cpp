// Attention with a tensor scale (a learned temperature, shared or per head) on the fused path:
// against a per-head loop built from plain ops, gradcheck through scale, and the checks.
#include "core/autograd.h"
#include "nn/attention.h"
#include "nn/flash_attention.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// Head h: softmax(scale_h * q_h k_g^T [+ causal mask]) v_g with g = h mod G, one head at a time.
Tensor per_head_loop(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, int64_t kv_heads,
                     const Tensor& scale, bool causal) {
    const int64_t d = q.size(2) / heads, dv = v.size(2) / kv_heads, l1 = q.size(1), l2 = k.size(1);
    std::vector<Tensor> outs;
    for (int64_t h = 0; h < heads; ++h) {
        const int64_t g = h % kv_heads;
        const Tensor s = scale.numel() == 1 ? scale.reshape({}) : scale[h];
        Tensor logits = q.narrow(2, h * d, d).matmul(k.narrow(2, g * d, d).transpose(1, 2)) * s;
        if (causal) logits = logits + nn::causal_mask(l1, l2, q.options());
        outs.push_back(logits.softmax(-1).matmul(v.narrow(2, g * dv, dv)));
    }
    return cat(outs, 2);
}

struct Inputs {
    Tensor q, k, v;
};

Inputs grouped_inputs(int64_t heads, int64_t kv_heads, int64_t l1, int64_t l2, int64_t d, uint64_t seed) {
    return {test::randn64({2, l1, heads * d}, seed), test::randn64({2, l2, kv_heads * d}, seed + 1),
            test::randn64({2, l2, kv_heads * d}, seed + 2)};
}

}  // namespace

TEST_CASE("a tensor scale on the fused path equals the per-head loop", "[nn][attention_scale]") {
    REQUIRE(nn::flash_attention_enabled());
    REQUIRE(nn::has_flash_attention(Device::cpu()));  // so the fused kernel is what runs below
    const Tensor per_head = from_vector(std::vector<double>{0.2, 0.9, -0.4, 1.7}, {4}, test::f64(true));
    const Tensor shared = full({}, 0.6, test::f64(true));
    for (const bool causal : {false, true}) {
        for (const Tensor& scale : {per_head, shared}) {
            CAPTURE(causal, scale.numel());
            const Inputs in = grouped_inputs(4, 2, 5, 7, 3, 10);
            LATTE_REQUIRE_CLOSE(nn::grouped_attention(in.q, in.k, in.v, 4, 2, causal, scale),
                                per_head_loop(in.q, in.k, in.v, 4, 2, scale, causal), 1e-12, 1e-12);
            // Latent attention: every head reads the one latent as keys and values.
            const Tensor q = test::randn64({2, 5, 4 * 3}, 20), c = test::randn64({2, 7, 3}, 21);
            LATTE_REQUIRE_CLOSE(nn::latent_attention(q, c, 4, causal, scale),
                                per_head_loop(q, c, c, 4, 1, scale, causal), 1e-12, 1e-12);
        }
    }
    // A constant tensor scale is the double-scale call.
    const Inputs in = grouped_inputs(4, 4, 6, 6, 2, 30);
    LATTE_REQUIRE_CLOSE(nn::grouped_attention(in.q, in.k, in.v, 4, 4, true, full({1}, 0.35, test::f64())),
                        nn::grouped_attention(in.q, in.k, in.v, 4, 4, true, 0.35), 1e-12, 1e-12);
}

TEST_CASE("a tensor scale passes gradcheck with q, k and v", "[nn][attention_scale][gradcheck]") {
    const Inputs in = grouped_inputs(4, 2, 4, 6, 3, 40);
    const Tensor scale = from_vector(std::vector<double>{0.5, -0.3, 1.1, 0.8}, {4}, test::f64(true));
    LATTE_REQUIRE_GRADCHECK(
        [](const std::vector<Tensor>& t) { return nn::grouped_attention(t[0], t[1], t[2], 4, 2, true, t[3]); },
        {in.q, in.k, in.v, scale});
    const Tensor q = test::randn64({2, 3, 2 * 4}, 50), c = test::randn64({2, 5, 4}, 51);
    const Tensor temperature = full({}, 0.7, test::f64(true));
    LATTE_REQUIRE_GRADCHECK(
        [](const std::vector<Tensor>& t) { return nn::latent_attention(t[0], t[1], 2, false, t[2]); },
        {q, c, temperature});
}

TEST_CASE("a tensor scale is checked against the heads, dtype and device", "[nn][attention_scale][errors]") {
    const Inputs in = grouped_inputs(4, 2, 3, 3, 2, 60);
    REQUIRE_THROWS_WITH(nn::grouped_attention(in.q, in.k, in.v, 4, 2, false, zeros({3}, test::f64())),
                        Catch::Contains("attention: scale [3] must be 0-d, (1) or (H)=(4)"));
    REQUIRE_THROWS_WITH(nn::grouped_attention(in.q, in.k, in.v, 4, 2, false, zeros({4, 1}, test::f64())),
                        Catch::Contains("must be 0-d, (1) or (H)=(4)"));
    REQUIRE_THROWS_WITH(nn::grouped_attention(in.q, in.k, in.v, 4, 2, false, zeros({4})),
                        Catch::Contains("attention: scale is float32 on cpu, q is float64 on cpu"));
    REQUIRE_THROWS_WITH(nn::latent_attention(in.q, in.k, 4, false, Tensor()),
                        Catch::Contains("latent attention: argument 'scale' is an undefined tensor"));
}
