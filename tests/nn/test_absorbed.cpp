// Parts 12 and 13: the reduced matrices and the absorbed MLA path.
#include <cmath>

#include "core/autograd.h"
#include "nn/absorbed.h"
#include "nn/mha.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

struct Weights {
    Tensor W_DKV, W_UK, W_UV, W_Q, W_O;
};

Weights random_weights(int64_t D, int64_t H, int64_t d, int64_t r, uint64_t seed, bool requires_grad = false) {
    return {test::randn64({r, D}, seed, requires_grad), test::randn64({H * d, r}, seed + 1, requires_grad),
            test::randn64({H * d, r}, seed + 2, requires_grad), test::randn64({H * d, D}, seed + 3, requires_grad),
            test::randn64({D, H * d}, seed + 4, requires_grad)};
}

// Part 12's boxed formulas, one head at a time: an independent check of the batched version.
ReducedMatrices per_head_formulas(const Weights& w, int64_t H) {
    const int64_t r = w.W_DKV.size(0), d = w.W_UK.size(0) / H;
    std::vector<Tensor> q_blocks, o_blocks;
    for (int64_t h = 0; h < H; ++h) {
        Tensor uk = narrow(w.W_UK, 0, h * d, d), uv = narrow(w.W_UV, 0, h * d, d);
        Tensor q = narrow(w.W_Q, 0, h * d, d), o = narrow(w.W_O, 1, h * d, d);
        q_blocks.push_back(mul(matmul(transpose(uk, 0, 1), q), std::sqrt(double(r) / double(d))));
        o_blocks.push_back(matmul(o, uv));
    }
    return {w.W_DKV, w.W_DKV, cat(q_blocks, 0), cat(o_blocks, 1)};
}

}  // namespace

TEST_CASE("reduced_matrices equals Part 12's per-head formulas", "[nn][absorbed]") {
    const int64_t D = 12, H = 4, d = 3, r = 5;
    Weights w = random_weights(D, H, d, r, 1);
    ReducedMatrices got = reduced_matrices(w.W_DKV, w.W_UK, w.W_UV, w.W_Q, w.W_O, H);
    ReducedMatrices want = per_head_formulas(w, H);
    REQUIRE(got.W_Q_hat.shape() == Shape{H * r, D});
    REQUIRE(got.W_O_hat.shape() == Shape{D, H * r});
    REQUIRE(got.W_K_hat.same_as(w.W_DKV));
    REQUIRE(got.W_V_hat.same_as(w.W_DKV));
    LATTE_REQUIRE_CLOSE(got.W_Q_hat, want.W_Q_hat, 1e-13, 1e-13);
    LATTE_REQUIRE_CLOSE(got.W_O_hat, want.W_O_hat, 1e-13, 1e-13);
}

TEST_CASE("reduced_matrices is differentiable in every weight", "[nn][absorbed][gradcheck]") {
    Weights w = random_weights(6, 2, 3, 2, 10, true);
    auto run = [](const std::vector<Tensor>& v) {
        ReducedMatrices m = reduced_matrices(v[0], v[1], v[2], v[3], v[4], 2);
        return cat({flatten(m.W_Q_hat), flatten(m.W_O_hat)}, 0);
    };
    LATTE_REQUIRE_GRADCHECK(run, (std::vector<Tensor>{w.W_DKV, w.W_UK, w.W_UV, w.W_Q, w.W_O}));
}

TEST_CASE("Part 13 on small sizes: the spec's reduced MHA and latte's absorbed path equal the vanilla MHA",
          "[nn][absorbed]") {
    const int64_t D = 16, H = 4, d = D / H, r = 3;
    Weights w = random_weights(D, H, d, r, 20);
    Tensor x = test::randn64({2, 5, D}, 30, false), y = test::randn64({2, 7, D}, 31, false);
    Generator gen(0);
    // Vanilla: MHA with W_K = W_UK W_DKV, W_V = W_UV W_DKV.
    MultiHeadAttention vanilla(D, D, d, d, H, gen, DType::Float64);
    vanilla.W_Q->set_weight(w.W_Q);
    vanilla.W_K->set_weight(matmul(w.W_UK, w.W_DKV));
    vanilla.W_V->set_weight(matmul(w.W_UV, w.W_DKV));
    vanilla.W_O->set_weight(w.W_O);
    // The spec's illustration: MHA(D, D, r, r, H) whose K/V weights are H copies of W_DKV.
    ReducedMatrices m = reduced_matrices(w.W_DKV, w.W_UK, w.W_UV, w.W_Q, w.W_O, H);
    MultiHeadAttention reduced(D, D, r, r, H, gen, DType::Float64);
    reduced.W_Q->set_weight(m.W_Q_hat);
    reduced.W_K->set_weight(repeat(m.W_K_hat, {H, 1}));
    reduced.W_V->set_weight(repeat(m.W_V_hat, {H, 1}));
    reduced.W_O->set_weight(m.W_O_hat);
    // latte's absorbed path: one shared latent, no copies.
    MultiHeadLatentAttention mla(D, H, d, r, gen, DType::Float64);
    mla.W_DKV->set_weight(w.W_DKV);
    mla.W_UK->set_weight(w.W_UK);
    mla.W_UV->set_weight(w.W_UV);
    mla.W_Q->set_weight(w.W_Q);
    mla.W_O->set_weight(w.W_O);
    const AbsorbedLatentAttention precomputed(mla, AbsorbedForm::Precomputed), factored(mla, AbsorbedForm::Factored);
    REQUIRE_FALSE(precomputed.factored());
    REQUIRE(factored.factored());
    REQUIRE_FALSE(AbsorbedLatentAttention(mla).factored());  // Auto: r = 3 <= d = 4
    for (bool causal : {false, true}) {
        CAPTURE(causal);
        const Tensor expected = vanilla(x, y, causal);
        REQUIRE(relative_error(reduced(x, y, causal), expected) < 1e-12);
        REQUIRE(relative_error(mla.forward_absorbed(x, y, causal), expected) < 1e-12);
        REQUIRE(relative_error(precomputed.forward(x, y, causal), expected) < 1e-12);
        REQUIRE(relative_error(factored.forward(x, y, causal), expected) < 1e-12);
        REQUIRE(relative_error(mla.forward(x, y, causal), expected) < 1e-12);
    }
}

TEST_CASE("the absorbed path has the vanilla MLA's gradients for inputs and weights", "[nn][absorbed]") {
    const int64_t D = 8, H = 2, d = 4, r = 3;
    Generator gen(3);
    MultiHeadLatentAttention mla(D, H, d, r, gen, DType::Float64);
    Tensor x = test::randn64({2, 4, D}, 40), y = test::randn64({2, 6, D}, 41);
    const Tensor grad_out = test::randn64({2, 4, D}, 42, false);
    std::vector<Tensor> grads[2];
    for (int path = 0; path < 2; ++path) {
        mla.zero_grad();
        x.zero_grad();
        y.zero_grad();
        Tensor out = path == 0 ? mla.forward(x, y, true) : mla.forward_absorbed(x, y, true);
        out.backward(grad_out);
        grads[path] = {x.grad(), y.grad()};
        for (const Tensor& p : mla.parameters()) grads[path].push_back(p.grad());
    }
    for (size_t i = 0; i < grads[0].size(); ++i) {
        CAPTURE(i);
        REQUIRE(relative_error(grads[1][i], grads[0][i]) < 1e-12);
    }
    auto absorbed = [&mla](const std::vector<Tensor>& v) { return mla.forward_absorbed(v[0], v[1], true); };
    LATTE_REQUIRE_GRADCHECK(absorbed, (std::vector<Tensor>{x, y}));
    // r = 3 < d = 4 makes forward_absorbed precompute; the factored form is differentiable too.
    auto factored = [&mla](const std::vector<Tensor>& v) {
        return AbsorbedLatentAttention(mla, AbsorbedForm::Factored).forward(v[0], v[1], true);
    };
    std::vector<Tensor> inputs{x, y};
    for (const Tensor& p : mla.parameters()) inputs.push_back(p);
    LATTE_REQUIRE_GRADCHECK(factored, inputs);
}

TEST_CASE("latent attention checks its shapes", "[nn][absorbed][errors]") {
    REQUIRE_THROWS_WITH(latent_attention(zeros({2, 3, 10}), zeros({2, 4, 3}), 4, false, 1.0),
                        "latent attention: q [2,3,10] and latents c [2,4,3] do not fit H=4 (need q (B, L1, H*r), c "
                        "(B, L2, r))");
    REQUIRE_THROWS_WITH(latent_attention(zeros({2, 5, 12}), zeros({2, 4, 3}), 4, true, 1.0),
                        "latent attention: a causal mask needs L1 <= L2, got L1=5 L2=4");
    REQUIRE_THROWS_WITH(reduced_matrices(zeros({3, 8}), zeros({8, 3}), zeros({8, 3}), zeros({8, 8}), zeros({8, 8}), 3),
                        Catch::Contains("reduced_matrices: need W_DKV (r, D)"));
    Generator gen(0);
    MultiHeadLatentAttention mla(8, 2, 4, 3, gen);
    AbsorbedLatentAttention absorbed(mla);
    REQUIRE_THROWS_WITH(absorbed.attend(zeros({2, 1, 8}), zeros({2, 4, 5})),
                        "AbsorbedLatentAttention: expected x (B, L1, 8) and latents c (B, L2, 3), got x [2,1,8] and c "
                        "[2,4,5]");
}
