// No non-finite result at exit 0: a run whose evaluation or reported figure is nan or inf fails
// naming the command, the step and the figure, and writes nothing from that state (no checkpoint,
// no --save, no loss.csv or summary); a --data file whose values would overflow the float32 loss
// is refused before training; a checkpoint is written only when its weights, optimizer state and
// loss on a held-out batch are finite, so a diverging run never replaces a good one.
#include <cmath>
#include <filesystem>
#include <limits>

#include "experiments/checkpoint.h"
#include "experiments/commands.h"
#include "experiments/finite_checks.h"
#include "experiments/train_data.h"
#include "core/autograd.h"
#include "nn/mha.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kSmallTrain{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--L", "4"};
const std::vector<std::string> kSmallLm{"--D", "32", "--layers", "1", "--batch", "4", "--eval-batches", "1"};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

test::CommandOutcome run_lm(std::vector<std::string> args) { return test::run_command(cmd_lm, "lm", std::move(args)); }

}  // namespace

TEST_CASE("latte train --lr 1e30 --steps 1: finite weights, nan held-out loss: refused, nothing written",
          "[finite][train]") {
    const test::ScratchDir s("finite_train");
    for (const std::string model : {"mha", "mla"}) {
        const std::string save = s / (model + ".safetensors");
        const test::CommandOutcome out = test::run_command(
            cmd_train, "train",
            plus(kSmallTrain, {"--model", model, "--steps", "1", "--lr", "1e30", "--save", save, "--out", s.dir,
                               "--name", model}));
        REQUIRE(out.rc == -1);
        REQUIRE(out.error ==
                "latte train: the held-out loss is nan after step 1 (lr 1e+30): training diverged and stopped; "
                "nothing was saved from the diverged state. No checkpoint was written.");
        REQUIRE_FALSE(fs::exists(save));
        REQUIRE_FALSE(fs::exists(s / (model + "/checkpoint.safetensors")));
        REQUIRE_FALSE(fs::exists(s / (model + "/loss.csv")));
    }
}

TEST_CASE("latte lm --lr 1e30 --steps 1: the nan held-out loss is refused, no checkpoint or --save written",
          "[finite][lm]") {
    const test::ScratchDir s("finite_lm");
    const std::string save = s / "model.safetensors";
    const test::CommandOutcome out =
        run_lm(plus(kSmallLm, {"--lr", "1e30", "--steps", "1", "--save", save, "--out", s.dir, "--name", "r"}));
    REQUIRE(out.rc == -1);
    REQUIRE(out.error ==
            "latte lm: the held-out loss is nan after step 1 (lr 1e+30): training diverged and stopped; nothing was "
            "saved from the diverged state. No checkpoint was written.");
    REQUIRE_FALSE(fs::exists(save));
    REQUIRE_FALSE(fs::exists(s / "r/checkpoint.safetensors"));
    REQUIRE_FALSE(fs::exists(s / "r/summary.json"));
    REQUIRE_FALSE(fs::exists(s / "r/loss.csv"));
}

TEST_CASE("latte compare and latte demo --lr 1e30 fail naming their command instead of printing nan",
          "[finite][cli]") {
    const test::ScratchDir s("finite_compare");
    const std::vector<std::string> sizes{"--D", "16", "--H", "2", "--d", "8", "--G", "1", "--batch", "4", "--L", "4",
                                         "--steps", "1", "--lr", "1e30", "--out", s.dir};
    const test::CommandOutcome compare =
        test::run_command(cmd_compare, "compare", plus(sizes, {"--seeds", "1", "--name", "c"}));
    REQUIRE(compare.rc == -1);
    REQUIRE_THAT(compare.error, StartsWith("latte compare: the held-out loss is nan after step 1 (lr 1e+30)"));
    REQUIRE_FALSE(fs::exists(s / "c/results.csv"));
    const test::CommandOutcome demo = test::run_command(cmd_demo, "demo", plus(sizes, {"--r", "8", "--name", "d"}));
    REQUIRE(demo.rc == -1);
    REQUIRE_THAT(demo.error, StartsWith("latte demo: the held-out loss is nan after step 1 (lr 1e+30)"));
    REQUIRE_THAT(demo.stdout_text, !Contains("nan"));
    REQUIRE_FALSE(fs::exists(s / "d/loss.csv"));
}

TEST_CASE("the finite checks name the command that runs them", "[finite]") {
    REQUIRE_THROWS_WITH(check_finite_figure("latte lm", "the held-out loss", -std::nan(""), 7, 0.5, "after"),
                        "latte lm: the held-out loss is nan after step 7 (lr 0.5): training diverged and stopped; "
                        "nothing was saved from the diverged state. after");
    REQUIRE_NOTHROW(check_finite_figure("latte lm", "the held-out loss", 1e38, 7, 0.5, "after"));
    nn::OptimizerState state;
    state.tensors = {{"exp_avg.0", zeros({2})}, {"exp_avg_sq.0", full({2}, INFINITY)}};
    REQUIRE_THROWS_WITH(check_optimizer_state("latte lm", state, 4, 1000, "No checkpoint was written."),
                        "latte lm: optimizer state exp_avg_sq.0 became non-finite at step 4 (lr 1000): training "
                        "diverged and stopped; nothing was saved from the diverged state. No checkpoint was written.");
}

TEST_CASE("latte train --data: values that would overflow the float32 loss are refused before training",
          "[finite][train]") {
    const test::ScratchDir s("finite_data");
    // 8 rows of (4, 16): batch 4, L1 4, D 16, so the bound is sqrt(FLT_MAX / (4 * 4*4*4*16)).
    const double bound = training_data_bound(4, 4, 16);
    REQUIRE(bound == std::sqrt(double(std::numeric_limits<float>::max()) / (4.0 * 1024)));
    Generator gen(2);
    const Tensor x = randn({8, 4, 16}, gen), y = randn({8, 4, 16}, gen), target = randn({8, 4, 16}, gen);
    auto write = [&](const std::string& path, float big) {
        Tensor t = clone(target);
        t.data_ptr<float>()[6 * 64 + 5] = big;  // a later row: [6, 0, 5]
        nn::save_safetensors(path, {{"x", x}, {"y", y}, {"target", t}});
    };
    write(s / "ok.safetensors", static_cast<float>(bound * 0.99));
    REQUIRE_NOTHROW(load_training_data(s / "ok.safetensors", 16, 16, 4));
    write(s / "big.safetensors", 3e38f);
    REQUIRE_THROWS_WITH(load_training_data(s / "big.safetensors", 16, 16, 4),
                        StartsWith("latte train: --data " + s / "big.safetensors" + ": tensor 'target' holds 3") &&
                            Contains("at index [6, 0, 5], beyond the bound ") &&
                            Contains("for the n = 4 * batch * L1 * D_1 = 1024 numbers the loss sums"));
    const test::CommandOutcome out = test::run_command(
        cmd_train, "train",
        {"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--steps", "2", "--data", s / "big.safetensors", "--out",
         s.dir, "--name", "big"});
    REQUIRE(out.rc == -1);
    REQUIRE_THAT(out.error, Contains("tensor 'target' holds 3"));
    REQUIRE(out.stdout_text.empty());  // refused before the banner
    REQUIRE_FALSE(fs::exists(s / "big/loss.csv"));
}

TEST_CASE("latte lm: a resumed run that diverges with --checkpoint-every 1 keeps the good checkpoint",
          "[finite][lm][checkpoint]") {
    const test::ScratchDir s("finite_lm_resume");
    const std::string ckpt = s / "run/checkpoint.safetensors";
    // At lr 1e5 the first step leaves a model whose held-out loss is finite; the second does not.
    const std::vector<std::string> run = plus(kSmallLm, {"--lr", "1e5", "--eval-every", "0", "--out", s.dir});
    const test::CommandOutcome first = run_lm(plus(run, {"--steps", "1", "--name", "run"}));
    REQUIRE(first.error.empty());
    REQUIRE(first.rc == 0);
    const std::string good = test::file_bytes(ckpt);
    const test::CommandOutcome resumed = run_lm({"--resume", ckpt, "--steps", "3", "--checkpoint-every", "1"});
    REQUIRE(resumed.rc == -1);
    REQUIRE(resumed.error ==
            "latte lm: the loss on a held-out batch is nan after step 2 (lr 100000): training diverged and stopped; "
            "nothing was saved from the diverged state. The last good checkpoint is " + ckpt + " (step 1).");
    REQUIRE(test::file_bytes(ckpt) == good);
    REQUIRE(load_checkpoint(ckpt).step == 1);
}

TEST_CASE("latte forward refuses to write a nan or inf result of finite weights and inputs", "[finite]") {
    const test::ScratchDir s("finite_forward");
    Generator gen(4);
    nn::MultiHeadAttention m(8, 8, 4, 4, 2, gen);
    {
        NoGradGuard no_grad;
        for (const Tensor& p : m.parameters()) copy_(p, mul(p, 1e25));  // finite, but the scores overflow float32
    }
    nn::save(m, s / "w.safetensors");
    nn::save_safetensors(s / "in.safetensors", {{"x", randn({1, 3, 8}, gen)}, {"y", randn({1, 3, 8}, gen)}});
    REQUIRE_THROWS_WITH(run_forward(s / "w.safetensors", s / "in.safetensors", s / "out.safetensors", DType::Float32,
                                    Device::cpu()),
                        StartsWith("latte forward: " + s / "out.safetensors" + ": output 'out' holds "));
    REQUIRE_FALSE(fs::exists(s / "out.safetensors"));
    // The same weights at their normal size give a finite result, which is written.
    Generator again(4);
    nn::save(nn::MultiHeadAttention(8, 8, 4, 4, 2, again), s / "w.safetensors");
    REQUIRE_NOTHROW(run_forward(s / "w.safetensors", s / "in.safetensors", s / "out.safetensors", DType::Float32,
                                Device::cpu()));
    REQUIRE(fs::exists(s / "out.safetensors"));
}
