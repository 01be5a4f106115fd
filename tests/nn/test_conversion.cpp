// Parts 6, 9, 10, 11: GQA -> MLA conversion and its limits.
#include "core/autograd.h"
#include "nn/conversion.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/reference_attention.h"

using namespace latte;
using namespace latte::nn;

namespace {

// The GQA module's output by the independent per-head loop reference.
Tensor gqa_reference(const GroupedQueryAttention& gqa, const Tensor& x, const Tensor& y, bool causal) {
    test::AttentionWeights w{gqa.W_Q->weight(), gqa.W_K->weight(), gqa.W_V->weight(), gqa.W_O->weight()};
    return test::reference_attention(x, y, w, gqa.heads(), gqa.kv_heads(), causal);
}

}  // namespace

TEST_CASE("Part 10: gqa_to_mla factors randn(4, 24) tiled 6 times, exactly", "[nn][conversion]") {
    for (DType dtype : {DType::Float64, DType::Float32}) {
        CAPTURE(dtype_name(dtype));
        Generator gen(10);
        Tensor w = randn({4, 24}, gen, TensorOptions{}.with_dtype(dtype));
        LatentFactors f = gqa_to_mla(w);
        REQUIRE(f.W_DKV.shape() == Shape{4, 24});
        REQUIRE(f.W_UM.shape() == Shape{24, 4});
        REQUIRE(f.mse < (dtype == DType::Float64 ? 1e-20 : 1e-10));
        // The MSE it reports is the real one: recompute it independently, row block by row block.
        Tensor product = matmul(f.W_UM, f.W_DKV);
        for (int64_t copy = 0; copy < 6; ++copy)
            LATTE_REQUIRE_CLOSE(narrow(product, 0, 4 * copy, 4), w, 0, dtype == DType::Float64 ? 1e-12 : 1e-4);
    }
    REQUIRE_THROWS_WITH(gqa_to_mla(zeros({5, 24})), "gqa_to_mla: W_M_GQA must be (r, D) with r dividing D, got [5,24]");
}

TEST_CASE("Part 6: tiling does not change the rank, read off the singular values", "[nn][conversion]") {
    Tensor low = matmul(test::randn64({6, 2}, 1, false), test::randn64({2, 18}, 2, false));  // rank 2
    REQUIRE(matrix_rank(low) == 2);
    REQUIRE(matrix_rank(repeat(low, {3, 1})) == 2);
    Tensor full = test::randn64({6, 18}, 3, false);
    REQUIRE(matrix_rank(repeat(full, {3, 1})) == matrix_rank(full));
    REQUIRE(matrix_rank(full) == 6);
    // The tiled matrix has 3x the rows, but its singular values are sqrt(3) x the original's.
    const auto s = svd(full).S.to_vector(), s3 = svd(repeat(full, {3, 1})).S.to_vector();
    for (size_t i = 0; i < s.size(); ++i) REQUIRE(s3[i] == Approx(std::sqrt(3.0) * s[i]).epsilon(1e-12));
}

TEST_CASE("to_mla gives an MLA whose outputs and input gradients equal the GQA's", "[nn][conversion]") {
    for (auto [H, G] : {std::pair<int64_t, int64_t>{4, 2}, {6, 3}, {4, 1}, {4, 4}}) {
        CAPTURE(H, G);
        const int64_t d = 3, D = H * d;
        Generator gen(H * 10 + G);
        GroupedQueryAttention gqa(D, D, d, d, H, G, gen, DType::Float64);
        auto mla = to_mla(gqa);
        REQUIRE(mla->rank() == std::min(2 * G * d, D));
        REQUIRE(mla->kv_cache_per_position() <= gqa.kv_cache_per_position());
        Tensor x = test::randn64({2, 5, D}, 1), y = test::randn64({2, 7, D}, 2);
        for (bool causal : {false, true}) {
            Tensor yc = causal ? narrow(y, 1, 0, 5) : y;
            Tensor expected = gqa_reference(gqa, x, yc, causal);
            Tensor out_gqa = gqa.forward(x, yc, causal), out_mla = mla->forward(x, yc, causal);
            REQUIRE(relative_error(out_mla, expected) < 1e-12);
            REQUIRE(relative_error(out_gqa, expected) < 1e-12);
        }
        // Gradients with respect to the inputs agree.
        Tensor gx[2], gy[2];
        const Tensor grad_out = test::randn64({2, 5, D}, 3, false);
        int i = 0;
        for (Attention* m : {static_cast<Attention*>(&gqa), static_cast<Attention*>(mla.get())}) {
            Tensor xi = x.detach().requires_grad_(), yi = y.detach().requires_grad_();
            m->forward(xi, yi).backward(grad_out);
            gx[i] = xi.grad();
            gy[i] = yi.grad();
            ++i;
        }
        REQUIRE(relative_error(gx[1], gx[0]) < 1e-12);
        REQUIRE(relative_error(gy[1], gy[0]) < 1e-12);
    }
}

TEST_CASE("to_mla in float32 keeps the dtype and matches within float32 rounding", "[nn][conversion]") {
    Generator gen(5);
    GroupedQueryAttention gqa(32, 32, 8, 8, 4, 2, gen);
    auto mla = to_mla(gqa);
    REQUIRE(mla->W_DKV->weight().dtype() == DType::Float32);
    Generator data(6);
    Tensor x = randn({3, 6, 32}, data), y = randn({3, 9, 32}, data);
    REQUIRE(relative_error(mla->forward(x, y), gqa.forward(x, y)) < 1e-5);
}

TEST_CASE("one shared latent needs r = 2*G*d unless K and V share a row space", "[nn][conversion]") {
    const int64_t H = 4, G = 2, d = 3, D = 12;
    Generator gen(7);
    GroupedQueryAttention gqa(D, D, d, d, H, G, gen, DType::Float64);
    Tensor x = test::randn64({2, 5, D}, 8, false), y = test::randn64({2, 6, D}, 9, false);
    const Tensor expected = gqa.forward(x, y);
    REQUIRE(rank_needed(gqa) == 2 * G * d);
    // r = G*d, enough for W_K alone (Part 9), drops half of [W_K; W_V]'s directions: not equal.
    REQUIRE(relative_error(to_mla(gqa, G * d)->forward(x, y), expected) > 1e-2);
    // When W_V = A W_K the row spaces coincide, and r = G*d is exact.
    gqa.W_V->set_weight(matmul(test::randn64({G * d, G * d}, 10, false), gqa.W_K->weight()));
    REQUIRE(rank_needed(gqa) == G * d);
    REQUIRE(relative_error(to_mla(gqa, G * d)->forward(x, y), gqa.forward(x, y)) < 1e-12);
    REQUIRE_THROWS_WITH(to_mla(gqa, 13), "to_mla: rank 13 must be in [1, min(2*G*d, D) = 12]");
    GroupedQueryAttention wide(D, 10, d, d, H, G, gen, DType::Float64);
    REQUIRE_THROWS_WITH(to_mla(wide), "to_mla: needs a GQA with D_1 = D_2 = H*D_qk and D_qk = D_v (MLA's shape), "
                                      "got D_1=12 D_2=10 H=4 D_qk=3 D_v=3");
}

TEST_CASE("Part 11: MLA is more general than GQA", "[nn][conversion]") {
    // The spec's counterexample: W_UM W_DKV = [3 6; 4 8] is not two copies of one 1x2 row.
    Tensor down = from_vector(std::vector<double>{1, 2}, {1, 2}, test::f64());
    Tensor up = from_vector(std::vector<double>{3, 4}, {2, 1}, test::f64());
    Tensor product = matmul(up, down);
    REQUIRE(product.to_vector() == std::vector<double>{3, 6, 4, 8});
    REQUIRE_FALSE(is_gqa_representable(product, 2, 1));
    REQUIRE(is_gqa_representable(repeat(down, {2, 1}), 2, 1));  // two copies of [1 2] is GQA
    // A converted GQA is representable with its G (and trivially with G = H); a random MLA is not.
    Generator gen(11);
    GroupedQueryAttention gqa(12, 12, 3, 3, 4, 2, gen, DType::Float64);
    auto converted = to_mla(gqa);
    REQUIRE(is_gqa_representable(*converted, 2));
    REQUIRE(is_gqa_representable(*converted, 4));
    REQUIRE_FALSE(is_gqa_representable(*converted, 1));
    MultiHeadLatentAttention random(12, 4, 3, 6, gen, DType::Float64);
    REQUIRE_FALSE(is_gqa_representable(random, 2));
    REQUIRE_FALSE(is_gqa_representable(random, 1));
    REQUIRE(is_gqa_representable(random, 4));  // G = H: every MLA is an MHA
    // A representable MLA converts back: the round trip GQA -> MLA -> GQA computes the same function.
    auto back = to_gqa(*converted, 2);
    Tensor x = test::randn64({2, 4, 12}, 12, false), y = test::randn64({2, 6, 12}, 13, false);
    REQUIRE(relative_error(back->forward(x, y), gqa.forward(x, y)) < 1e-12);
    REQUIRE(relative_error(back->W_K->weight(), gqa.W_K->weight()) < 1e-12);
    REQUIRE_THROWS_WITH(to_gqa(random, 2), Catch::Contains("is not a GQA with G=2"));
    REQUIRE_THROWS_WITH(is_gqa_representable(product, 2, 3),
                        "is_gqa_representable: W [2,2] must be (H*d, D) with G dividing H, got H=2 G=3");
}
