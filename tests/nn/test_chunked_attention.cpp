// Block-wise attention with recomputation: the same numbers and gradients as the plain form, and
// memory that does not hold an (L1, L2) matrix.
#include <functional>

#include "core/autograd.h"
#include "core/node.h"
#include "core/storage.h"
#include "nn/attention.h"
#include "nn/chunked_attention.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

// Whether the autograd graph behind t has a node called `name`.
bool graph_has(const Tensor& t, const std::string& name) {
    std::vector<Node*> todo{t.grad_fn().get()};
    while (!todo.empty()) {
        Node* node = todo.back();
        todo.pop_back();
        if (node == nullptr) continue;
        if (node->name() == name) return true;
        for (const auto& meta : node->next)
            if (meta) todo.push_back(meta->grad_fn.get());
    }
    return false;
}

}  // namespace

TEST_CASE("chunked attention equals the plain form, forward and gradients", "[nn][chunked]") {
    // GQA-like broadcast: q (B, H/G, G, L1, d), k and v (B, 1, G, L2, d).
    Tensor q = test::randn64({2, 2, 3, 7, 4}, 1), k = test::randn64({2, 1, 3, 9, 4}, 2), v = test::randn64({2, 1, 3, 9, 5}, 3);
    const Tensor grad_out = test::randn64({2, 2, 3, 7, 5}, 4, false);
    for (bool causal : {false, true}) {
        for (int64_t block : {1, 3, 4, 64}) {
            CAPTURE(causal, block);
            std::vector<Tensor> plain_grads, chunk_grads;
            for (int path = 0; path < 2; ++path) {
                for (Tensor t : {q, k, v}) t.zero_grad();
                Tensor out = path == 0 ? scaled_dot_product_attention(q, k, v, 0.4, causal)
                                       : chunked_attention(q, k, v, 0.4, causal, block);
                out.backward(grad_out);
                auto& grads = path == 0 ? plain_grads : chunk_grads;
                grads = {out.detach(), q.grad(), k.grad(), v.grad()};
            }
            for (size_t i = 0; i < plain_grads.size(); ++i) {
                CAPTURE(i);
                REQUIRE(relative_error(chunk_grads[i], plain_grads[i]) < 1e-12);
            }
        }
    }
}

TEST_CASE("chunked attention passes gradcheck", "[nn][chunked][gradcheck]") {
    Tensor q = test::randn64({2, 5, 3}, 5), k = test::randn64({2, 6, 3}, 6), v = test::randn64({2, 6, 2}, 7);
    auto run = [](const std::vector<Tensor>& t) { return chunked_attention(t[0], t[1], t[2], 0.7, true, 2); };
    LATTE_REQUIRE_GRADCHECK(run, (std::vector<Tensor>{q, k, v}));
}

TEST_CASE("chunked attention memory grows linearly in L, the plain form's quadratically", "[nn][chunked][memory]") {
    const int64_t H = 2, d = 16, block = 128;
    // Peak bytes of one forward + backward at length L, above what was live before.
    auto peak_of = [&](int64_t L, bool chunked) {
        Generator gen(8);
        const TensorOptions grad = TensorOptions{}.with_requires_grad(true);
        Tensor q = randn({H, L, d}, gen, grad), k = randn({H, L, d}, gen, grad), v = randn({H, L, d}, gen, grad);
        const Tensor grad_out = randn({H, L, d}, gen);
        const int64_t base = memory_stats().live_bytes;
        reset_peak_memory();
        Tensor out = chunked ? chunked_attention(q, k, v, 0.25, true, block) : scaled_dot_product_attention(q, k, v, 0.25, true);
        out.backward(grad_out);
        return memory_stats().peak_bytes - base;
    };
    const int64_t plain1 = peak_of(1024, false), plain2 = peak_of(2048, false);
    const int64_t chunk1 = peak_of(1024, true), chunk2 = peak_of(2048, true);
    INFO("plain " << plain1 << " -> " << plain2 << ", chunked " << chunk1 << " -> " << chunk2);
    REQUIRE(double(plain2) > 3.5 * double(plain1));  // (L, L) matrices: x4
    REQUIRE(double(chunk2) < 2.5 * double(chunk1));  // (block, L) blocks and O(L) tensors: x2
    REQUIRE(chunk2 < H * 2048 * 2048 * 4 / 2);       // under half of one float32 score matrix
}

TEST_CASE("chunked attention checks its inputs", "[nn][chunked][errors]") {
    REQUIRE_THROWS_WITH(chunked_attention(zeros({3, 4}), zeros({5, 3}), zeros({5, 2}), 1.0, false),
                        Catch::Contains("chunked attention: q [3,4], k [5,3], v [5,2] do not fit"));
    REQUIRE_THROWS_WITH(chunked_attention(zeros({6, 4}), zeros({5, 4}), zeros({5, 2}), 1.0, true),
                        "chunked attention: a causal mask needs L1 <= L2, got L1=6 L2=5");
}

TEST_CASE("modules switch to chunked attention above the memory limit, with the same results", "[nn][chunked]") {
    // Where the fused kernel serves (the CPU) it comes first; this checks the path other devices take.
    set_flash_attention_enabled(false);
    Generator gen(9);
    MultiHeadAttention mha(12, 12, 3, 3, 4, gen, DType::Float64);
    GroupedQueryAttention gqa(12, 12, 3, 3, 4, 2, gen, DType::Float64);
    MultiHeadLatentAttention mla(12, 4, 3, 5, gen, DType::Float64);
    Tensor x = test::randn64({2, 300, 12}, 10), y = test::randn64({2, 301, 12}, 11);
    const int64_t saved = attention_memory_limit();
    REQUIRE(saved == int64_t(256) << 20);
    for (Attention* m : {static_cast<Attention*>(&mha), static_cast<Attention*>(&gqa), static_cast<Attention*>(&mla)}) {
        for (bool causal : {false, true}) {
            set_attention_memory_limit(-1);  // never chunk
            const Tensor plain = m->forward(x, y, causal);
            set_attention_memory_limit(0);   // always chunk (300 query rows: 3 blocks)
            const Tensor chunked = m->forward(x, y, causal);
            set_attention_memory_limit(saved);
            REQUIRE(relative_error(chunked, plain) < 1e-12);
            REQUIRE(graph_has(chunked, "chunked_attention"));
            REQUIRE_FALSE(graph_has(plain, "chunked_attention"));
        }
    }
    // The absorbed MLA path chunks too (heads as a batch dim over the one latent).
    for (bool causal : {false, true}) {
        set_attention_memory_limit(0);
        const Tensor chunked = mla.forward_absorbed(x, y, causal);
        set_attention_memory_limit(saved);
        REQUIRE(graph_has(chunked, "chunked_attention"));
        REQUIRE(relative_error(chunked, mla.forward(x, y, causal)) < 1e-12);
    }
    set_attention_memory_limit(0);
    auto run = [&gqa](const std::vector<Tensor>& v) { return gqa.forward(v[0], v[1], true); };
    const GradcheckResult r = gradcheck(run, {test::randn64({1, 4, 12}, 12), test::randn64({1, 5, 12}, 13)});
    set_attention_memory_limit(saved);
    set_flash_attention_enabled(true);
    INFO(r.message);
    REQUIRE(r.ok);
}
