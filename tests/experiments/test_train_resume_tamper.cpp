// `latte train --resume` and `latte lm --resume` take a checkpoint's optimizer state only when it
// belongs to the run: a state edited after it was written (another lr or beta, step counts that
// do not match the checkpoint's step, a parameter without its Adam moments, module settings other
// than the model's) is refused with the file and the key, before anything is loaded. A checkpoint
// written before the optimizer kept per-parameter step counts still resumes bit-identically.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "experiments/checkpoint.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"
#include "tests/support/tamper.h"
#include "experiments/commands.h"

using namespace latte;
using namespace latte::experiments;

namespace {

using test::Metadata;
using test::Tensors;
using test::tamper;

void drop_tensor(Tensors& tensors, const std::string& name) {
    const auto before = tensors.size();
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == name; }),
                  tensors.end());
    REQUIRE(tensors.size() + 1 == before);
}

}  // namespace

TEST_CASE("latte train --resume refuses a checkpoint whose optimizer state or module settings were edited",
          "[train][checkpoint]") {
    const test::ScratchDir s("train_resume_tamper");
    const std::string ckpt = s / "ck.safetensors", bad = s / "bad.safetensors";
    const std::vector<std::string> common{"--model", "gqa", "--G", "2", "--D", "16", "--H", "4", "--d", "4",
                                          "--batch", "4", "--L", "4", "--seed", "3"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), common.begin(), common.end());
        return extra;
    };
    REQUIRE(test::run_train(with({"--steps", "8", "--save", s / "a.safetensors", "--out", s.dir, "--name", "a"})) == 0);
    REQUIRE(test::run_train(with({"--steps", "5", "--checkpoint", ckpt, "--out", s.dir, "--name", "b"})) == 0);
    const Metadata written = nn::load_safetensors(ckpt).metadata;
    REQUIRE(written.at("step") == "5");
    REQUIRE(written.at("optimizer.step") == "5");
    REQUIRE(written.at("optimizer.step.0") == "5");
    REQUIRE(written.at("optimizer.step.3") == "5");
    REQUIRE(written.at("optimizer.lr") == "0.003");

    auto refused = [&](const std::function<void(Metadata&, Tensors&)>& edit, const std::string& message) {
        tamper(ckpt, bad, edit);
        REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "8", "--resume", bad, "--checkpoint", s / "out.ckpt",
                                                  "--out", s / "c"})),
                            "latte train: cannot resume from " + bad + ": " + message);
        REQUIRE_FALSE(std::filesystem::exists(s / "out.ckpt"));
    };
    refused([](Metadata& m, Tensors&) { m["optimizer.lr"] = "0.5"; },
            "its optimizer.lr is 0.5, this run has --lr 0.003 (a resumed run keeps the run's learning rate)");
    refused([](Metadata& m, Tensors&) { m["optimizer.beta1"] = "0.5"; },
            "its optimizer.beta1 is 0.5, this run's optimizer has 0.9");
    refused([](Metadata& m, Tensors&) { m["optimizer.step"] = "3"; },
            "its optimizer.step is 3, but the checkpoint is at step 5");
    refused([](Metadata& m, Tensors&) { m["optimizer.step.2"] = "6"; },
            "its optimizer.step.2 is 6, more than the checkpoint's step 5");
    refused([](Metadata& m, Tensors&) { m["optimizer.step.2"] = "4"; },
            "its optimizer.step.2 is 4, but every parameter is updated at every step and the checkpoint is at step 5");
    refused(
        [](Metadata&, Tensors& t) {
            drop_tensor(t, "optimizer.exp_avg.0");
            drop_tensor(t, "optimizer.exp_avg_sq.0");
        },
        "it has no tensor 'optimizer.exp_avg.0' (parameter 0's optimizer state) at step 5");
    refused(  // the same in a checkpoint with the global step only
        [](Metadata& m, Tensors& t) {
            for (int i = 0; i < 4; ++i) m.erase("optimizer.step." + std::to_string(i));
            drop_tensor(t, "optimizer.exp_avg.1");
            drop_tensor(t, "optimizer.exp_avg_sq.1");
        },
        "it has no tensor 'optimizer.exp_avg.1' (parameter 1's optimizer state) at step 5");
    refused([](Metadata& m, Tensors&) { m["module.G"] = "4"; }, "its module.G is 4, the model has 2");
    refused([](Metadata& m, Tensors&) { m["module.rope"] = "true"; }, "its module.rope is true, the model has (none)");

    // Untampered, and also written as before per-parameter step counts (the global step alone), it
    // resumes to the same bytes as the run never interrupted.
    for (bool old_style : {false, true}) {
        CAPTURE(old_style);
        tamper(ckpt, bad, [&](Metadata& m, Tensors&) {
            if (old_style)
                for (int i = 0; i < 4; ++i) m.erase("optimizer.step." + std::to_string(i));
        });
        std::filesystem::remove_all(s / "d");
        REQUIRE(test::run_train(with({"--steps", "8", "--resume", bad, "--checkpoint", s / "out.ckpt", "--save",
                                      s / "d.safetensors", "--out", s / "d"})) == 0);
        REQUIRE(test::file_bytes(s / "a.safetensors") == test::file_bytes(s / "d.safetensors"));
        REQUIRE(test::file_bytes(s / "a/checkpoint.safetensors") == test::file_bytes(s / "out.ckpt"));
        std::remove((s / "out.ckpt").c_str());
    }
}

TEST_CASE("check_module_config names the first differing module key", "[train][checkpoint]") {
    REQUIRE_NOTHROW(check_module_config({{"module", "mha"}, {"H", "2"}}, {{"module", "mha"}, {"H", "2"}}, "w", "f"));
    REQUIRE_THROWS_WITH(check_module_config({{"module", "mha"}, {"H", "2"}}, {{"module", "mha"}, {"H", "4"}}, "w", "f"),
                        "w: cannot resume from f: its module.H is 2, the model has 4");
    REQUIRE_THROWS_WITH(check_module_config({{"module", "mha"}}, {{"module", "mha"}, {"H", "4"}}, "w", "f"),
                        "w: cannot resume from f: its module.H is (none), the model has 4");
}

TEST_CASE("latte lm --resume refuses a checkpoint whose optimizer lr, decays or step counts were edited", "[lm][cli]") {
    const test::ScratchDir s("lm_resume_tamper");
    const std::string ckpt = s / "ck.safetensors", bad = s / "bad.safetensors";
    const std::vector<std::string> common{"--task", "recall", "--L", "7", "--batch", "4", "--lr", "0.01",
                                          "--eval-every", "0", "--eval-batches", "1", "--attention", "mha",
                                          "--layers", "1", "--D", "16", "--H", "2", "--vocab", "11"};
    auto lm = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), common.begin(), common.end());
        return test::run_command(cmd_lm, "lm", extra);
    };
    const auto first = lm({"--steps", "2", "--out", s / "a", "--checkpoint", ckpt});
    INFO(first.stdout_text << first.error);
    REQUIRE(first.rc == 0);
    const Metadata written = nn::load_safetensors(ckpt).metadata;
    REQUIRE(written.at("optimizer.step.0") == "2");
    auto refused = [&](const std::function<void(Metadata&, Tensors&)>& edit, const std::string& message) {
        tamper(ckpt, bad, edit);
        const auto r = lm({"--steps", "4", "--resume", bad, "--checkpoint", s / "out.ckpt", "--out", s / "b"});
        REQUIRE(r.rc == -1);
        REQUIRE(r.error == "latte lm: cannot resume from " + bad + ": " + message);
    };
    refused([](Metadata& m, Tensors&) { m["optimizer.lr"] = "0.5"; },
            "its optimizer.lr is 0.5, but this run's --lr 0.01 and schedule give 0.01 at step 2 (a resumed run keeps "
            "the run's learning rate)");
    refused([](Metadata& m, Tensors&) { m["optimizer.param_weight_decay"] = "1"; },
            "its optimizer.param_weight_decay is 1, this run's optimizer has " + written.at("optimizer.param_weight_decay"));
    refused([](Metadata& m, Tensors&) { m["optimizer.step"] = "1"; },
            "its optimizer.step is 1, but the checkpoint is at step 2");
    refused([](Metadata& m, Tensors&) { m["optimizer.step.0"] = "3"; },
            "its optimizer.step.0 is 3, more than the checkpoint's step 2");
    // Untampered it resumes (test_lm_load_resume checks the bytes).
    const auto ok = lm({"--steps", "4", "--resume", ckpt, "--out", s / "b"});
    INFO(ok.stdout_text << ok.error);
    REQUIRE(ok.rc == 0);
}
