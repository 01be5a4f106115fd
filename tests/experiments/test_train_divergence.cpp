// Divergence stops training: a non-finite loss, gradient or weight is an error naming the step
// and the tensor, and no file is written from the diverged state.
#include <cmath>
#include <filesystem>

#include "core/autograd.h"
#include "experiments/checkpoint.h"
#include "experiments/finite_checks.h"
#include "nn/mha.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"
#include "tests/support/tamper.h"

using namespace latte;
using namespace latte::experiments;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("latte train --lr 1e30 stops with an error and leaves the good --save file as it was", "[train]") {
    const std::string dir = test::temp_path("diverge"), good = dir + "/good.safetensors";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--L", "4"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    REQUIRE(test::run_train(with({"--steps", "3", "--save", good, "--out", dir})) == 0);
    const std::string before = test::file_bytes(good);

    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "50", "--lr", "1e30", "--save", good, "--out", dir})),
                        StartsWith("latte train: the loss is ") &&
                            Contains(" at step 2 (lr 1e+30): training diverged and stopped; nothing was saved from the "
                                     "diverged state. No checkpoint was written."));
    REQUIRE(test::file_bytes(good) == before);

    // With a checkpoint every step: the weights after step 1 are finite (about 1e30) but their loss
    // on a held-out batch is not, so no checkpoint is written, and a good one there stays as it was.
    const std::string ckpt = dir + "/run.ckpt";
    REQUIRE(test::run_train(with({"--steps", "3", "--checkpoint", ckpt, "--out", dir, "--name", "good"})) == 0);
    const std::string good_checkpoint = test::file_bytes(ckpt);
    // (--overwrite: the run replaces the existing --checkpoint file, which is not its --resume file.)
    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "50", "--lr", "1e30", "--checkpoint", ckpt, "--overwrite",
                                              "--checkpoint-every", "1", "--save", good, "--out", dir})),
                        "latte train: the loss on a held-out batch is nan after step 1 (lr 1e+30): training diverged "
                        "and stopped; nothing was saved from the diverged state. No checkpoint was written.");
    REQUIRE(test::file_bytes(ckpt) == good_checkpoint);
    REQUIRE(test::file_bytes(good) == before);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a non-finite gradient or weight is named with its parameter and step", "[train]") {
    Generator gen(1);
    nn::MultiHeadAttention m(8, 8, 4, 4, 2, gen);
    auto params = m.named_parameters();  // handles sharing the module's tensors
    for (auto& [name, p] : params) p.set_grad(zeros_like(p));
    check_finite_gradients("latte train", m, 4, 0.5, "after");  // finite: no error
    check_finite_parameters("latte train", m, 4, 0.5, "after");
    params[1].second.set_grad(full(params[1].second.shape(), std::nan("")));
    REQUIRE_THROWS_WITH(check_finite_gradients("latte train", m, 4, 0.5, "No checkpoint was written."),
                        "latte train: the gradient of W_K.weight is not finite at step 4 (lr 0.5): training diverged "
                        "and stopped; nothing was saved from the diverged state. No checkpoint was written.");
    {
        NoGradGuard no_grad;
        copy_(params[3].second, full(params[3].second.shape(), INFINITY));
    }
    REQUIRE_THROWS_WITH(check_finite_parameters("latte train", m, 9, 0.5, "after"),
                        "latte train: parameter W_O.weight became non-finite at step 9 (lr 0.5): training diverged and "
                        "stopped; nothing was saved from the diverged state. after");
    REQUIRE_THROWS_WITH(check_finite_loss("latte train", INFINITY, 2, 1.0, "after"),
                        "latte train: the loss is inf at step 2 (lr 1): training diverged and stopped; nothing was saved "
                        "from the diverged state. after");
}

TEST_CASE("latte train --detect-anomaly turns anomaly mode on for the run only", "[train]") {
    TrainConfig c = test::small_train_config();
    c.steps = 2;
    c.detect_anomaly = true;
    auto teacher = make_teacher(c.sizes, c.seed);
    std::vector<bool> during;
    c.on_step = [&](int64_t, double) { during.push_back(detect_anomaly_enabled()); };
    const TrainResult with_checks = train_student(c, teacher.get());
    REQUIRE(during == std::vector<bool>{true, true});
    REQUIRE_FALSE(detect_anomaly_enabled());
    c.detect_anomaly = false;
    c.on_step = nullptr;
    REQUIRE(test::same_bytes(train_student(c, teacher.get()).losses, with_checks.losses));  // checks change no number

    const std::string dir = test::temp_path("anomaly_runs");
    REQUIRE(test::run_train({"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--L", "4", "--steps", "2",
                             "--detect-anomaly", "--out", dir}) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("divergence messages print nan and inf the same way whatever their sign bit", "[train]") {
    REQUIRE_THROWS_WITH(check_finite_loss("latte train", -std::nan(""), 3, 0.5, "after"),
                        "latte train: the loss is nan at step 3 (lr 0.5): training diverged and stopped; nothing was "
                        "saved from the diverged state. after");
    REQUIRE_THROWS_WITH(check_finite_loss("latte train", -INFINITY, 3, 0.5, "after"),
                        "latte train: the loss is -inf at step 3 (lr 0.5): training diverged and stopped; nothing was "
                        "saved from the diverged state. after");
    REQUIRE(nonfinite_text(std::nan("")) == "nan");
    // The optimizer's state is checked before a checkpoint is written.
    nn::OptimizerState state;
    state.tensors = {{"exp_avg.0", zeros({2})}, {"exp_avg_sq.0", from_vector(std::vector<double>{0.5, -0.25}, {2})}};
    REQUIRE_THROWS_WITH(check_optimizer_state("latte train", state, 7, 0.5, "after"),
                        "latte train: optimizer state exp_avg_sq.0 became negative at step 7 (lr 0.5): training diverged "
                        "and stopped; nothing was saved from the diverged state. after");
    state.tensors[0].second = full({2}, INFINITY);
    REQUIRE_THROWS_WITH(check_optimizer_state("latte train", state, 7, 0.5, "after"),
                        "latte train: optimizer state exp_avg.0 became non-finite at step 7 (lr 0.5): training diverged "
                        "and stopped; nothing was saved from the diverged state. after");
    state.tensors = {{"momentum_buffer.0", zeros({2})}, {"exp_avg_sq.1", zeros({3})}};
    REQUIRE_NOTHROW(check_optimizer_state("latte train", state, 7, 0.5, "after"));
}

TEST_CASE("a divergence from huge --init weights names the --init file, not the learning rate alone", "[train]") {
    const test::ScratchDir s("diverge_init");
    const std::vector<std::string> small{"--model", "gqa", "--G", "1", "--D", "16", "--H", "2", "--d", "8",
                                         "--batch", "4", "--L", "4", "--log-every", "0", "--out", s.dir};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    const std::string good = s / "good.safetensors", big = s / "big.safetensors";
    REQUIRE(test::run_train(with({"--steps", "2", "--save", good, "--name", "good"})) == 0);
    // Finite, so the file loads, but W_Q.weight[0, 0] = 3e38 overflows the forward pass.
    test::tamper(good, big, [](test::Metadata&, test::Tensors& tensors) {
        for (auto& [name, t] : tensors)
            if (name == "W_Q.weight") {
                std::vector<float> v = t.to_vector<float>();
                v[0] = 3e38f;
                t = from_vector(v, t.shape());
            }
    });
    const test::CommandOutcome r = test::run_command(cmd_train, "train", with({"--steps", "3", "--init", big}));
    REQUIRE_THAT(r.error, StartsWith("latte train: the loss is ") &&
                              Contains(" at step 1 (lr 0.003): training diverged and stopped; nothing was saved from "
                                       "the diverged state. No update had been made yet: the --init weights " + big +
                                       " are the cause, not the learning rate"));
}

TEST_CASE("a latte lm divergence names the --weight-decay given beside the learning rate", "[lm]") {
    const test::ScratchDir s("diverge_weight_decay");
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--layers", "1", "--batch", "4", "--steps", "3",
                                         "--eval-every", "0", "--out", s.dir};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    // 1 - lr x weight-decay = -1e305: every step flips and multiplies the decayed weights.
    const test::CommandOutcome big = test::run_command(cmd_lm, "lm", with({"--weight-decay", "1e308", "--name", "big"}));
    REQUIRE_THAT(big.error, StartsWith("latte lm: ") && Contains("(lr 0.001): training diverged and stopped") &&
                                Contains("--weight-decay 1e308 may be the cause too (AdamW multiplies the decayed "
                                         "weights by 1 - lr x weight-decay = -1e+305 at each step at the full rate). "
                                         "No checkpoint was written."));
    // Not given, it is not named: the learning rate is the suspect.
    const test::CommandOutcome lr = test::run_command(cmd_lm, "lm", with({"--lr", "1e30", "--name", "lr"}));
    REQUIRE_THAT(lr.error, Contains("training diverged and stopped") && !Contains("weight-decay"));
}
