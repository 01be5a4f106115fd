// The precomputed absorbed form (and the latent decoders built on it) multiplies weights once,
// when it is built. After a weight changes (an optimizer step, a load, set_weight, Module::to)
// those products are stale while W_DKV is still read live: mixing them gave outputs 96% off the
// module's. Using a stale form is now refused; the factored form reads every weight live and
// stays equal to the module.
#include "nn/absorbed.h"
#include "nn/decode.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

// One SGD step on the mean output, which moves every weight.
void train_one_step(Module& module, const std::function<Tensor()>& forward) {
    SGD opt(module.parameters(), 0.1);
    mean(forward()).backward();
    opt.step();
}

}  // namespace

TEST_CASE("the precomputed absorbed MLA refuses to run after a weight update; the factored one follows it",
          "[nn][absorbed]") {
    Generator gen(5);
    // r = 4 <= d = 8 picks the precomputed form; r = 16 > d the factored one.
    for (int64_t r : {4, 16}) {
        MultiHeadLatentAttention mla(16, 2, 8, r, gen, DType::Float64);
        const Tensor x = test::randn64({2, 5, 16}, 7, false), y = test::randn64({2, 6, 16}, 8, false);
        AbsorbedLatentAttention absorbed(mla);
        REQUIRE(absorbed.factored() == (r > 8));
        train_one_step(mla, [&] { return mla.forward(x, y, false); });
        NoGradGuard no_grad;
        CAPTURE(r);
        if (absorbed.factored()) {
            LATTE_REQUIRE_CLOSE(absorbed.forward(x, y), mla.forward(x, y, false), 1e-12, 1e-12);
        } else {
            REQUIRE_THROWS_WITH(absorbed.forward(x, y),
                                Catch::Contains("AbsorbedLatentAttention: the module's W_UK changed") &&
                                    Catch::Contains("build the absorbed form (or the decoder) again"));
            LATTE_REQUIRE_CLOSE(AbsorbedLatentAttention(mla).forward(x, y), mla.forward(x, y, false), 1e-12, 1e-12);
        }
    }
}

TEST_CASE("a latent decoder built before a weight update refuses to decode after it", "[nn][absorbed][decode]") {
    Generator gen(6);
    MultiHeadLatentAttention mla(16, 2, 8, 4, gen, DType::Float64);
    MultiHeadLatentAttentionRoPE mla_rope(16, 2, 8, 4, 4, gen, DType::Float64);
    const Tensor x = test::randn64({2, 3, 16}, 9, false);
    auto decoder = make_decoder(mla, 2, 4);
    auto rope_decoder = make_decoder(mla_rope, 2, 4);
    {
        NoGradGuard no_grad;
        REQUIRE_NOTHROW(decoder->step(narrow(x, 1, 0, 1)));
        REQUIRE_NOTHROW(rope_decoder->step(narrow(x, 1, 0, 1)));
    }
    train_one_step(mla, [&] { return mla.forward(x, x, true); });
    train_one_step(mla_rope, [&] { return mla_rope.forward(x, x, true); });
    NoGradGuard no_grad;
    REQUIRE_THROWS_WITH(decoder->step(narrow(x, 1, 1, 1)), Catch::Contains("changed"));
    REQUIRE_THROWS_WITH(rope_decoder->step(narrow(x, 1, 1, 1)),
                        Catch::Contains("AbsorbedLatentAttentionRoPE: the module's"));
    // Module::to replaces the storage without an in-place write: also caught.
    auto fresh = make_decoder(mla, 2, 4);
    mla.to(DType::Float32);
    REQUIRE_THROWS_WITH(fresh->step(to(narrow(x, 1, 0, 1), DType::Float32)), Catch::Contains("changed"));
}
