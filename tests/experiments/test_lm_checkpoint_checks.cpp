// Every value a `latte lm --resume` checkpoint holds is checked against the others and against its
// tensors before anything is allocated: module.* against config.* and against the number of
// weights, the accuracy history against the batch, steps_to_99 against the held-out history, the
// losses and the generator state; and (both train and lm) Adam's moments against each other.
#include <filesystem>
#include <functional>

#include "experiments/checkpoint.h"
#include "experiments/commands.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"
#include "tests/support/tamper.h"

using namespace latte;
using namespace latte::experiments;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

using test::Metadata;
using test::Tensors;
using test::tamper;

Tensor& tensor(Tensors& tensors, const std::string& name) {
    for (auto& [n, t] : tensors)
        if (n == name) return t;
    FAIL("no tensor " << name);
    throw;
}

}  // namespace

TEST_CASE("latte lm --resume checks every module.* and lm.* entry against the flags and the tensors",
          "[checkpoint][lm]") {
    const test::ScratchDir s("lm_checkpoint_checks");
    const std::string ckpt = s / "ck.safetensors", bad = s / "bad.safetensors";
    const std::vector<std::string> common{"--task", "recall", "--L", "7", "--batch", "4", "--lr", "0.01",
                                          "--eval-every", "1", "--eval-batches", "1", "--attention", "mha",
                                          "--layers", "1", "--D", "32", "--H", "2", "--vocab", "11"};
    auto lm = [&](std::vector<std::string> args) { return test::run_command(cmd_lm, "lm", std::move(args)); };
    std::vector<std::string> first_run = common;
    for (const char* a : {"--steps", "3", "--checkpoint", ckpt.c_str(), "--out", s.dir.c_str(), "--name", "a"})
        first_run.emplace_back(a);
    const auto first = lm(first_run);
    INFO(first.stdout_text << first.error);
    REQUIRE(first.rc == 0);
    const Metadata written = nn::load_safetensors(ckpt).metadata;
    REQUIRE(written.at("module.mlp_hidden") == "128");
    REQUIRE(written.at("module.rope") == "true");
    REQUIRE(written.at("config.rope") == "on");

    // Resumed by --resume alone: the flags are the checkpoint's config.*.
    auto refused = [&](const std::function<void(Metadata&, Tensors&)>& edit, const std::string& message,
                       std::vector<std::string> more = {}) {
        tamper(ckpt, bad, edit);
        std::vector<std::string> args{"--resume", bad, "--steps", "4", "--checkpoint", s / "out.ckpt", "--out",
                                      s / "b"};
        args.insert(args.end(), more.begin(), more.end());
        const auto r = lm(args);
        REQUIRE(r.rc == -1);
        REQUIRE(r.error == "latte lm: cannot resume from " + bad + ": " + message);
        REQUIRE(r.stdout_text.empty());  // before the banner: nothing built, nothing trained
        REQUIRE_FALSE(std::filesystem::exists(s / "out.ckpt"));
    };
    // A huge MLP width is compared with the tensors before the model is built.
    refused([](Metadata& m, Tensors&) { m["module.mlp_hidden"] = "400000000"; },
            "its module.* (layers=1, D=32, H=2, d=16, G=2, r=0, d_R=0, q_rank=(none), mlp_hidden=400000000, vocab=11, "
            "norm=rms) describe a DecoderLM of 38400004896 parameters, but its model.* tensors hold 17184 numbers");
    refused([](Metadata& m, Tensors&) { m["module.rope"] = "false"; },
            "its module.rope is false (rope off), but its config.rope is on: the checkpoint's model and flags "
            "disagree");
    // A D=32 checkpoint relabelled D=16, resumed under --D 16.
    refused([](Metadata& m, Tensors&) { m["config.D"] = "16"; },
            "its module.D is 32 (D 32), but its config.D is 16: the checkpoint's model and flags disagree",
            {"--D", "16"});
    refused([](Metadata& m, Tensors&) { m["config.surprise"] = "1"; },
            "it has config.surprise=1, which is not a setting latte lm stores");
    refused([](Metadata& m, Tensors&) { m["module.surprise"] = "1"; },
            "it has module.surprise, which no latte lm checkpoint holds (the model's settings and lm.* history only)");
    // 4 sequences of 1 answer each per step.
    refused([](Metadata& m, Tensors&) { m["module.lm.answers_correct"] = "0,0,1000"; },
            "its lm.answers_correct says step 3 got 1000 answers right, but a step has 4 answers (--batch 4 x 1)");
    refused([](Metadata& m, Tensors&) { m["module.lm.held_out"] = "1/1/4,2/2/4,3/3/6"; },
            "its lm.held_out entry at step 3 has 6 answers, not a multiple of the 4 of a batch");
    refused(
        [](Metadata& m, Tensors&) {
            m["module.lm.held_out"] = "1/1/4,2/2/4,3/3/4";
            m["module.lm.steps_to_99"] = "2";
        },
        "its lm.steps_to_99 is 2, but its lm.held_out first reaches 99% at no step");
    refused(
        [](Metadata& m, Tensors&) {
            m["module.lm.held_out"] = "1/1/4,2/4/4,3/4/4";
            m.erase("module.lm.steps_to_99");
        },
        "its lm.steps_to_99 is (none), but its lm.held_out first reaches 99% at step 2");

    // Where the checkpoint itself is read: losses and the generator.
    auto unreadable = [&](const std::function<void(Metadata&, Tensors&)>& edit, const std::string& message) {
        tamper(ckpt, bad, edit);
        const auto r = lm({"--resume", bad, "--steps", "4", "--checkpoint", s / "out.ckpt", "--out", s / "b"});
        REQUIRE(r.rc == -1);
        REQUIRE(r.error == "load_checkpoint: " + bad + ": " + message);
    };
    unreadable([](Metadata&, Tensors& t) { tensor(t, "losses").data_ptr<double>()[1] = -0.5; },
               "losses[1] (step 2) is -0.5, but a training loss is never negative");
    unreadable(
        [](Metadata& m, Tensors&) {
            m["generator.has_spare"] = "false";
            m["generator.spare"] = "0.5";
        },
        "generator.spare is 0.5 with generator.has_spare false (a finite number, 0 without a spare)");

    // Untampered, it resumes.
    tamper(ckpt, bad, [](Metadata&, Tensors&) {});
    const auto ok = lm({"--resume", bad, "--steps", "4", "--checkpoint", s / "out.ckpt", "--out", s / "b"});
    INFO(ok.error);
    REQUIRE(ok.rc == 0);
}

TEST_CASE("a resumed run refuses an Adam exp_avg its exp_avg_sq could not have come with", "[checkpoint][finite]") {
    const test::ScratchDir s("adam_moments");
    const std::string ckpt = s / "ck.safetensors", bad = s / "bad.safetensors";
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--L", "4"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    REQUIRE(test::run_train(with({"--steps", "3", "--checkpoint", ckpt, "--out", s.dir, "--name", "a"})) == 0);
    auto set_exp_avg = [&](float value) {
        tamper(ckpt, bad, [&](Metadata&, Tensors& t) { tensor(t, "optimizer.exp_avg.1").data_ptr<float>()[3] = value; });
    };
    set_exp_avg(3e38f);
    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "5", "--resume", bad, "--checkpoint", s / "out.ckpt"})),
                        StartsWith("latte train: cannot resume from " + bad + ": its optimizer.exp_avg.1 holds 3") &&
                            Contains(" at index [0, 3] where its optimizer.exp_avg_sq.1 holds ") &&
                            Contains("Adam's moments (betas 0.9, 0.999) keep |exp_avg| <= sqrt(") &&
                            Contains("so this state was not written by Adam"));
    REQUIRE_FALSE(std::filesystem::exists(s / "out.ckpt"));
    // The bound is not a tolerance on training itself: the checkpoint as written resumes.
    tamper(ckpt, bad, [](Metadata&, Tensors&) {});
    REQUIRE(test::run_train(with({"--steps", "5", "--resume", bad, "--checkpoint", s / "out.ckpt"})) == 0);
}
