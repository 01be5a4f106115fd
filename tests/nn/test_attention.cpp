#include "core/autograd.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/reference_attention.h"

using namespace latte;
using namespace latte::nn;


TEST_CASE("Linear stores (out, in) weights with PyTorch's init bounds", "[nn]") {
    Generator gen(1);
    Linear layer(16, 4, true, gen, DType::Float64);
    const auto named = layer.named_parameters();
    REQUIRE(named.size() == 2);
    REQUIRE(named[0].first == "weight");
    REQUIRE(named[0].second.shape() == Shape{4, 16});
    REQUIRE(named[1].first == "bias");
    for (double v : layer.weight().to_vector()) REQUIRE(std::fabs(v) <= 0.25);
    Tensor x = test::randn64({3, 5, 16}, 2, false);
    LATTE_REQUIRE_CLOSE(layer(x), add(matmul(x, transpose(layer.weight(), 0, 1)), named[1].second), 1e-14, 0);
    REQUIRE_THROWS_WITH(layer(test::randn64({3, 15}, 3)), "Linear: input [3,15] does not end in 16 features (weight [4,16])");
}

TEST_CASE("attention modules name their parameters like the spec's PyTorch classes", "[nn]") {
    Generator gen(0);
    MultiHeadAttention mha(12, 10, 3, 5, 4, gen);
    std::vector<std::string> names;
    for (auto& [n, t] : mha.named_parameters()) names.push_back(n + shape_str(t.shape()));
    REQUIRE(names == std::vector<std::string>{"W_Q.weight[12,12]", "W_K.weight[12,10]", "W_V.weight[20,10]",
                                              "W_O.weight[12,20]"});
    GroupedQueryAttention gqa(12, 10, 3, 5, 4, 2, gen);
    REQUIRE(gqa.named_parameters()[1].second.shape() == Shape{6, 10});
    REQUIRE(gqa.kv_cache_per_position() == 2 * 8);
    MultiHeadLatentAttention mla(12, 4, 3, 5, gen);
    names.clear();
    for (auto& [n, t] : mla.named_parameters()) names.push_back(n + shape_str(t.shape()));
    REQUIRE(names == std::vector<std::string>{"W_Q.weight[12,12]", "W_DKV.weight[5,12]", "W_UK.weight[12,5]",
                                              "W_UV.weight[12,5]", "W_O.weight[12,12]"});
    REQUIRE(mla.kv_cache_per_position() == 5);
    REQUIRE(mha.num_parameters() == 144 + 120 + 200 + 240);
    REQUIRE_THROWS_WITH(GroupedQueryAttention(12, 10, 3, 5, 4, 3, gen),
                        "GroupedQueryAttention: H=4 is not a multiple of G=3");
    REQUIRE_THROWS_WITH(MultiHeadLatentAttention(12, 4, 4, 5, gen), "MultiHeadLatentAttention: D=12 must equal H*d=4*4");
    REQUIRE_THROWS_WITH(mha(zeros({2, 3, 12}), zeros({2, 4, 11})),
                        "MultiHeadAttention: expected x (B, L1, 12) and y (B, L2, 10), got x [2,3,12] and y [2,4,11]");
}

TEST_CASE("MHA and GQA match the per-head loop reference, with and without a causal mask", "[nn]") {
    Generator gen(5);
    const int64_t D1 = 8, D2 = 6, dqk = 3, dv = 2, H = 6;
    Tensor x = test::randn64({2, 4, D1}, 10, false), y = test::randn64({2, 5, D2}, 11, false);
    for (int64_t G : {1, 2, 3, 6}) {
        INFO("G = " << G);
        GroupedQueryAttention gqa(D1, D2, dqk, dv, H, G, gen, DType::Float64);
        const test::AttentionWeights w{gqa.W_Q->weight(), gqa.W_K->weight(), gqa.W_V->weight(), gqa.W_O->weight()};
        for (bool causal : {false, true}) {
            LATTE_REQUIRE_CLOSE(gqa(x, y, causal), test::reference_attention(x, y, w, H, G, causal), 1e-12, 1e-13);
        }
    }
    MultiHeadAttention mha(D1, D2, dqk, dv, H, gen, DType::Float64);
    const test::AttentionWeights w{mha.W_Q->weight(), mha.W_K->weight(), mha.W_V->weight(), mha.W_O->weight()};
    LATTE_REQUIRE_CLOSE(mha(x, y), test::reference_attention(x, y, w, H, H, false), 1e-12, 1e-13);
}

TEST_CASE("the spec's identities: GQA(G=H) = MHA, GQA = MHA with tiled K/V, MLA = MHA with W_UK W_DKV", "[nn]") {
    Generator gen(7);
    const int64_t D = 12, H = 4, d = 3, G = 2, r = 5;
    Tensor x = test::randn64({2, 3, D}, 20, false), y = test::randn64({2, 6, D}, 21, false);

    // Part 8: with G = H, GQA is MHA.
    GroupedQueryAttention gqa_full(D, D, d, d, H, H, gen, DType::Float64);
    MultiHeadAttention mha(D, D, d, d, H, gen, DType::Float64);
    mha.W_Q->set_weight(gqa_full.W_Q->weight());
    mha.W_K->set_weight(gqa_full.W_K->weight());
    mha.W_V->set_weight(gqa_full.W_V->weight());
    mha.W_O->set_weight(gqa_full.W_O->weight());
    LATTE_REQUIRE_CLOSE(gqa_full(x, y), mha(x, y), 1e-13, 1e-14);

    // Parts 6, 9: GQA equals MHA whose K/V weights tile the GQA ones H/G times: row block h of
    // the tiled matrix is block h mod G.
    GroupedQueryAttention gqa(D, D, d, d, H, G, gen, DType::Float64);
    mha.W_Q->set_weight(gqa.W_Q->weight());
    mha.W_K->set_weight(repeat(gqa.W_K->weight().detach(), {H / G, 1}));
    mha.W_V->set_weight(repeat(gqa.W_V->weight().detach(), {H / G, 1}));
    mha.W_O->set_weight(gqa.W_O->weight());
    LATTE_REQUIRE_CLOSE(gqa(x, y), mha(x, y), 1e-13, 1e-14);
    // The other grouping (h // (H/G)) is a different model: the rule matters.
    Tensor wk = gqa.W_K->weight().detach();
    mha.W_K->set_weight(reshape(expand(unsqueeze(reshape(wk, {G, d, D}), 1), {G, H / G, d, D}), {H * d, D}));
    REQUIRE_FALSE(allclose(gqa(x, y), mha(x, y), 1e-6, 1e-6).ok);

    // MLA equals MHA with W_K = W_UK W_DKV and W_V = W_UV W_DKV.
    MultiHeadLatentAttention mla(D, H, d, r, gen, DType::Float64);
    mha.W_Q->set_weight(mla.W_Q->weight());
    mha.W_K->set_weight(matmul(mla.W_UK->weight(), mla.W_DKV->weight()));
    mha.W_V->set_weight(matmul(mla.W_UV->weight(), mla.W_DKV->weight()));
    mha.W_O->set_weight(mla.W_O->weight());
    LATTE_REQUIRE_CLOSE(mla(x, y), mha(x, y), 1e-12, 1e-13);
    LATTE_REQUIRE_CLOSE(mla(x, y, true), mha(x, y, true), 1e-12, 1e-13);
}

TEST_CASE("MHA, GQA and MLA pass gradcheck for inputs and weights", "[nn][gradcheck]") {
    Generator gen(9);
    const int64_t D = 6, H = 3, d = 2;
    Tensor x = test::randn64({2, 3, D}, 30), y = test::randn64({2, 4, D}, 31);
    MultiHeadAttention mha(D, D, d, d, H, gen, DType::Float64);
    GroupedQueryAttention gqa(D, D, d, d, H, 1, gen, DType::Float64);
    MultiHeadLatentAttention mla(D, H, d, 3, gen, DType::Float64);
    const std::vector<std::pair<const char*, Attention*>> modules = {{"mha", &mha}, {"gqa", &gqa}, {"mla", &mla}};
    for (const auto& [name, module] : modules) {
        for (bool causal : {false, true}) {
            INFO(name << (causal ? " causal" : ""));
            std::vector<Tensor> inputs{x, y};
            for (const Tensor& p : module->parameters()) inputs.push_back(p);
            auto run = [module = module, causal](const std::vector<Tensor>& v) { return module->forward(v[0], v[1], causal); };
            LATTE_REQUIRE_GRADCHECK(run, inputs);
        }
    }
}

TEST_CASE("GQA broadcasts K/V: its forward peak stays below what an H-fold copy needs", "[nn][memory]") {
    Generator gen(11);
    const int64_t B = 2, L1 = 4, L2 = 512, D = 64, H = 8, G = 1, d = 8;
    Tensor x = randn({B, L1, D}, gen), y = randn({B, L2, D}, gen);
    GroupedQueryAttention gqa(D, D, d, d, H, G, gen);
    MultiHeadAttention mha(D, D, d, d, H, gen);  // what materialised H-head K/V costs
    NoGradGuard no_grad;
    const int64_t f = 4;  // bytes per float32
    // Activations GQA needs at most at once (generously: every intermediate alive together):
    const int64_t kv = 2 * B * L2 * G * d * f;                  // K and V
    const int64_t q_and_out = 4 * B * L1 * H * d * f + B * L1 * D * f;
    const int64_t scores = 3 * B * H * L1 * L2 * f;             // logits, scaled, softmax
    const int64_t bound = kv + q_and_out + scores;
    const int64_t h_fold_copy = 2 * B * L2 * H * d * f;         // what copying K/V H/G times adds
    REQUIRE(h_fold_copy > bound);                               // so the bound can tell them apart

    auto peak_of = [](const std::function<void()>& run) {
        const int64_t base = memory_stats().live_bytes;
        reset_peak_memory();
        run();
        return memory_stats().peak_bytes - base;
    };
    const int64_t gqa_peak = peak_of([&] { gqa(x, y); });
    const int64_t mha_peak = peak_of([&] { mha(x, y); });
    INFO("gqa peak " << gqa_peak << ", mha peak " << mha_peak << ", bound " << bound);
    REQUIRE(gqa_peak <= bound);
    REQUIRE(mha_peak > bound);
}

TEST_CASE("Module::to converts parameters in place and leaves matching ones alone", "[nn]") {
    Generator gen(12);
    MultiHeadLatentAttention mla(8, 2, 4, 3, gen);
    const Tensor before = mla.W_Q->weight();
    const std::vector<float> values = before.to_vector<float>();
    const auto storage = before.storage();
    mla.to(DType::Float32);
    mla.to(Device::cpu());
    REQUIRE(mla.W_Q->weight().storage() == storage);  // nothing to do: the same data
    mla.to(DType::Float64);
    REQUIRE(mla.W_Q->weight().same_as(before));  // the same parameter, now float64
    REQUIRE(mla.W_Q->weight().storage() != storage);
    REQUIRE(mla.W_Q->weight().dtype() == DType::Float64);
    REQUIRE(mla.W_Q->weight().requires_grad());
    REQUIRE(mla.W_Q->weight().is_leaf());
    REQUIRE(mla.W_Q->weight().to_vector<float>() == values);
    REQUIRE(mla.device() == Device::cpu());
}
