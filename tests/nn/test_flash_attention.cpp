// The fused (FlashAttention-2) kernel against the composed form built from ops and against the
// per-head loop reference: outputs, gradients, causal masks, GQA, tiles, memory.
#include <functional>

#include "core/autograd.h"
#include "core/storage.h"
#include "nn/attention.h"
#include "nn/flash_attention.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/reference_attention.h"

using namespace latte;
using namespace latte::nn;

namespace {

// The composed form: each query head h against K/V head h mod G, expanded (a view) to H heads.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
    const int64_t H = q.size(1), G = k.size(1);
    auto expand_heads = [&](const Tensor& t) {  // [B, G, L, w] -> [B, H, L, w], head h = n*G + g
        Tensor e = expand(unsqueeze(t, 1), {t.size(0), H / G, G, t.size(2), t.size(3)});
        return reshape(e, {t.size(0), H, t.size(2), t.size(3)});
    };
    return scaled_dot_product_attention(q, expand_heads(k), expand_heads(v), scale, causal);
}

struct Case {
    int64_t B, H, G, L1, L2, d, dv;
    bool causal;
};

// Forward and input gradients of both forms, relative errors below tol.
void check_against_composed(const Case& c, DType dtype, double tol) {
    CAPTURE(c.B, c.H, c.G, c.L1, c.L2, c.d, c.dv, c.causal);
    Generator gen(c.B * 100 + c.L1);
    const TensorOptions opts = TensorOptions{}.with_dtype(dtype).with_requires_grad(true);
    Tensor q = randn({c.B, c.H, c.L1, c.d}, gen, opts), k = randn({c.B, c.G, c.L2, c.d}, gen, opts),
           v = randn({c.B, c.G, c.L2, c.dv}, gen, opts);
    const Tensor g = randn({c.B, c.H, c.L1, c.dv}, gen, TensorOptions{}.with_dtype(dtype));
    std::vector<Tensor> results[2];
    for (int path = 0; path < 2; ++path) {
        for (Tensor t : {q, k, v}) t.zero_grad();
        Tensor out = path == 0 ? flash_attention(q, k, v, 0.3, c.causal) : composed(q, k, v, 0.3, c.causal);
        out.backward(g);
        results[path] = {out.detach(), q.grad(), k.grad(), v.grad()};
    }
    for (size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        REQUIRE(relative_error(results[0][i], results[1][i]) < tol);
    }
}

}  // namespace

TEST_CASE("flash attention equals the composed form across tiles, masks and head groupings", "[nn][flash]") {
    REQUIRE(has_flash_attention(Device::cpu()));
    // Sizes cross the 128-row query tiles and 512-key tiles (backends/cpu/attention.cpp), with and
    // without remainders.
    const std::vector<Case> cases = {
        {2, 4, 4, 5, 7, 3, 2, false},    {2, 4, 2, 5, 7, 3, 2, true},     {1, 6, 3, 70, 150, 8, 5, false},
        {1, 6, 3, 70, 150, 8, 5, true},  {2, 2, 1, 129, 129, 4, 4, true}, {1, 4, 1, 1, 300, 6, 6, true},
        {1, 2, 2, 200, 257, 16, 16, true}, {3, 3, 1, 64, 128, 5, 7, false}, {1, 2, 1, 130, 600, 4, 4, true},
        {1, 2, 2, 300, 1100, 3, 3, false}, {1, 2, 1, 256, 1024, 4, 2, true},
    };
    for (const Case& c : cases) {
        check_against_composed(c, DType::Float64, 1e-12);
        check_against_composed(c, DType::Float32, 2e-5);
    }
}

TEST_CASE("flash attention passes gradcheck, causal and GQA", "[nn][flash][gradcheck]") {
    Tensor q = test::randn64({1, 4, 5, 3}, 1), k = test::randn64({1, 2, 6, 3}, 2), v = test::randn64({1, 2, 6, 2}, 3);
    for (bool causal : {false, true}) {
        auto run = [causal](const std::vector<Tensor>& t) { return flash_attention(t[0], t[1], t[2], 0.7, causal); };
        LATTE_REQUIRE_GRADCHECK(run, (std::vector<Tensor>{q, k, v}));
    }
    // The latent form: one tensor as both keys and values.
    Tensor c = test::randn64({1, 1, 6, 3}, 4);
    auto latent = [](const std::vector<Tensor>& t) { return flash_attention(t[0], t[1], t[1], 0.5, true); };
    LATTE_REQUIRE_GRADCHECK(latent, (std::vector<Tensor>{test::randn64({1, 3, 4, 3}, 5), c}));
}

TEST_CASE("flash attention reads strided views and writes heads next to each other", "[nn][flash]") {
    // q from a (B, L, H*d) projection, as the modules pass it: no copy of q, k or v is needed.
    Tensor proj = test::randn64({2, 9, 4 * 3}, 6);
    Tensor q = permute(reshape(proj, {2, 9, 4, 3}), {0, 2, 1, 3});
    Tensor k = test::randn64({2, 2, 11, 3}, 7), v = test::randn64({2, 2, 11, 5}, 8);
    Tensor out = flash_attention(q, k, v, 0.5, true);
    REQUIRE(out.shape() == Shape{2, 4, 9, 5});
    REQUIRE(out.strides() == Shape{9 * 4 * 5, 5, 4 * 5, 1});  // a (B, L1, H, dv) layout
    REQUIRE(relative_error(out, composed(contiguous(q), k, v, 0.5, true)) < 1e-12);
}

TEST_CASE("flash attention copies layouts whose rows overlap: expanded inputs, the gradient of a mean",
          "[nn][flash]") {
    // BLAS takes a row stride as a leading dimension, which must be at least the width. A stride of
    // 0 (expand, or the gradient of mean over the sequence) made OpenBLAS skip the product and the
    // kernel carry on with stale scratch: gradients off by 100-300%.
    const TensorOptions opts = TensorOptions{}.with_dtype(DType::Float64).with_requires_grad(true);
    Generator gen(21);
    Tensor q = randn({2, 4, 5, 3}, gen, opts), k = randn({2, 2, 6, 3}, gen, opts), v = randn({2, 2, 6, 4}, gen, opts);
    Tensor k_row = randn({2, 2, 1, 3}, gen, opts), v_row = randn({2, 2, 1, 4}, gen, opts);
    // One key whose row stride is 0 (a size-1 dim keeps any stride).
    Tensor k_one = randn({2, 2, 1, 3}, gen, TensorOptions{}.with_dtype(DType::Float64)).as_strided({2, 2, 1, 3}, {6, 3, 0, 1}, 0);
    k_one.requires_grad_(true);
    // Forward and the gradients of `leaves`, fused against composed, after a mean over the sequence
    // (a stride-0 gradient reaches the kernel).
    auto check = [&](const char* what, const std::function<Tensor()>& kk, const std::function<Tensor()>& vv,
                     const std::vector<Tensor*>& leaves, bool causal) {
        CAPTURE(what, causal);
        Tensor outs[2];
        std::vector<Tensor> grads[2];
        for (int path = 0; path < 2; ++path) {
            for (Tensor* t : leaves) t->set_grad(Tensor());
            Tensor out = path == 0 ? flash_attention(q, kk(), vv(), 0.4, causal) : composed(q, kk(), vv(), 0.4, causal);
            mean(mean(out, {2})).backward();
            outs[path] = out.detach();
            for (Tensor* t : leaves) grads[path].push_back(t->grad());
        }
        REQUIRE(relative_error(outs[0], outs[1]) < 1e-12);
        // Absolute slack too: with all keys equal, dQ is exactly 0 and only rounding is left of it.
        for (size_t i = 0; i < leaves.size(); ++i) {
            CAPTURE(i);
            LATTE_REQUIRE_CLOSE(grads[0][i], grads[1][i], 1e-10, 1e-12);
        }
    };
    for (bool causal : {false, true}) {
        check("plain inputs", [&] { return k; }, [&] { return v; }, {&q, &k, &v}, causal);
        check("K and V expanded along the sequence", [&] { return expand(k_row, {2, 2, 6, 3}); },
              [&] { return expand(v_row, {2, 2, 6, 4}); }, {&q, &k_row, &v_row}, causal);
    }
    check("one key with row stride 0", [&] { return k_one; }, [&] { return v_row; }, {&k_one, &v_row}, false);
}

TEST_CASE("modules use flash attention and match the per-head loop reference", "[nn][flash]") {
    Generator gen(21);
    GroupedQueryAttention gqa(12, 10, 3, 2, 4, 2, gen, DType::Float64);
    MultiHeadLatentAttention mla(12, 4, 3, 5, gen, DType::Float64);
    Tensor x = test::randn64({2, 70, 12}, 22), y = test::randn64({2, 130, 10}, 23);
    Tensor y12 = test::randn64({2, 130, 12}, 24);
    for (bool causal : {false, true}) {
        const test::AttentionWeights w{gqa.W_Q->weight(), gqa.W_K->weight(), gqa.W_V->weight(), gqa.W_O->weight()};
        REQUIRE(relative_error(gqa.forward(x, y, causal), test::reference_attention(x, y, w, 4, 2, causal)) < 1e-12);
        // The same numbers with the kernel switched off (the composed path).
        const Tensor fused_mla = mla.forward(x, y12, causal), fused_absorbed = mla.forward_absorbed(x, y12, causal);
        set_flash_attention_enabled(false);
        const Tensor plain_mla = mla.forward(x, y12, causal), plain_absorbed = mla.forward_absorbed(x, y12, causal);
        set_flash_attention_enabled(true);
        REQUIRE(relative_error(fused_mla, plain_mla) < 1e-12);
        REQUIRE(relative_error(fused_absorbed, plain_absorbed) < 1e-12);
        REQUIRE(relative_error(fused_absorbed, fused_mla) < 1e-12);
    }
}

TEST_CASE("flash attention memory grows linearly in L", "[nn][flash][memory]") {
    const int64_t H = 2, d = 16;
    auto peak_of = [&](int64_t L) {
        Generator gen(8);
        const TensorOptions grad = TensorOptions{}.with_requires_grad(true);
        Tensor q = randn({1, H, L, d}, gen, grad), k = randn({1, H, L, d}, gen, grad), v = randn({1, H, L, d}, gen, grad);
        const Tensor grad_out = randn({1, H, L, d}, gen);
        const int64_t base = memory_stats().live_bytes;
        reset_peak_memory();
        flash_attention(q, k, v, 0.25, true).backward(grad_out);
        return memory_stats().peak_bytes - base;
    };
    const int64_t p1 = peak_of(1024), p2 = peak_of(2048);
    INFO("peak " << p1 << " -> " << p2);
    REQUIRE(double(p2) < 2.5 * double(p1));
    REQUIRE(p2 < H * 2048 * 2048 * 4 / 8);  // under an eighth of one float32 score matrix
}

TEST_CASE("flash attention checks its inputs", "[nn][flash][errors]") {
    REQUIRE_THROWS_WITH(flash_attention(zeros({1, 3, 4, 2}), zeros({1, 2, 5, 2}), zeros({1, 2, 5, 2}), 1.0, false),
                        "flash attention: q [1,3,4,2], k [1,2,5,2], v [1,2,5,2] do not fit (need q [B,H,L1,d], "
                        "k [B,G,L2,d], v [B,G,L2,dv], G | H)");
    REQUIRE_THROWS_WITH(flash_attention(zeros({1, 2, 6, 2}), zeros({1, 2, 5, 2}), zeros({1, 2, 5, 2}), 1.0, true),
                        "flash attention: a causal mask needs L1 <= L2, got L1=6 L2=5");
    REQUIRE_THROWS_WITH(flash_attention(zeros({1, 2, 0, 2}), zeros({1, 2, 5, 2}), zeros({1, 2, 5, 2}), 1.0, false),
                        "flash attention: empty q [1,2,0,2], k [1,2,5,2] or v [1,2,5,2]");
    REQUIRE_THROWS_WITH(flash_attention(zeros({1, 2, 3, 2}), zeros({1, 2, 5, 2}, test::f64()), zeros({1, 2, 5, 2}), 1.0,
                                        false),
                        Catch::StartsWith("flash attention: dtype mismatch"));
}
