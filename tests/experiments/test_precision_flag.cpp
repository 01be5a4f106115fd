// --precision of latte train and latte lm: bf16 runs the student's products under autocast and is
// stored in the checkpoint (a resume keeps it, and refuses another); a CPU that cannot run bf16
// products is refused before any output, naming why; the teacher's targets do not change.
#include "backends/cpu/bf16_gemm.h"
#include "core/autocast.h"
#include "experiments/checkpoint.h"
#include "experiments/commands.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/bf16_reference.h"
#include "tests/support/run_command.h"
#include "tests/support/tamper.h"

using namespace latte;
using namespace latte::experiments;
using Catch::Matchers::Contains;

namespace {

const std::vector<std::string> kSmall{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--L", "4", "--log-every", "0"};

std::vector<std::string> small(std::vector<std::string> extra) {
    extra.insert(extra.begin(), kSmall.begin(), kSmall.end());
    return extra;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("latte train --precision bf16 trains under autocast, and its checkpoint keeps the precision",
          "[cli][precision]") {
    if (!test::cpu_runs_bf16("latte train --precision bf16")) return;
    const test::ScratchDir s("precision_train");
    auto train = [&](std::vector<std::string> extra) { return test::run_command(cmd_train, "train", small(extra)); };
    REQUIRE(train({"--steps", "6", "--out", s.dir, "--name", "f32"}).rc == 0);
    REQUIRE(train({"--steps", "6", "--precision", "bf16", "--out", s.dir, "--name", "bf16"}).rc == 0);
    // Same seed, teacher and batches: the first loss differs only by the products' rounding.
    const std::string f32 = read_file(s / "f32/loss.csv"), bf16 = read_file(s / "bf16/loss.csv");
    CHECK(f32 != bf16);
    const std::string ckpt = s / "bf16/checkpoint.safetensors";
    CHECK(load_checkpoint(ckpt).run_config.at("precision") == "bf16");
    CHECK(load_checkpoint(s / "f32/checkpoint.safetensors").run_config.at("precision") == "f32");
    const test::CommandOutcome other =
        test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "8", "--precision", "f32"});
    CHECK(other.rc == -1);
    CHECK_THAT(other.error, Contains("it was written with --precision bf16, this run has --precision f32"));
    CHECK(test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "8"}).rc == 0);
    CHECK(load_checkpoint(ckpt).run_config.at("precision") == "bf16");
    // A checkpoint from before --precision existed ran in float32, and resumes as such.
    const std::string old = s / "old.safetensors";
    test::tamper(s / "f32/checkpoint.safetensors", old,
                 [](test::Metadata& m, test::Tensors&) { m.erase("config.precision"); });
    const test::CommandOutcome older =
        test::run_command(cmd_train, "train", {"--resume", old, "--steps", "8", "--out", s.dir, "--name", "old"});
    CHECK(older.error.empty());
    CHECK(older.rc == 0);
    CHECK(load_checkpoint(old).run_config.at("precision") == "f32");
}

TEST_CASE("latte lm --precision bf16 is stored and kept on resume", "[cli][precision][lm]") {
    if (!test::cpu_runs_bf16("latte lm --precision bf16")) return;
    const test::ScratchDir s("precision_lm");
    const std::vector<std::string> lm{"--task", "recall", "--D", "16", "--H", "2", "--layers", "1", "--batch", "4",
                                      "--eval-every", "0", "--out", s.dir, "--name", "b"};
    std::vector<std::string> first = lm;
    first.insert(first.end(), {"--steps", "4", "--precision", "bf16"});
    REQUIRE(test::run_command(cmd_lm, "lm", first).rc == 0);
    const std::string ckpt = s / "b/checkpoint.safetensors";
    CHECK(load_checkpoint(ckpt).run_config.at("precision") == "bf16");
    REQUIRE(test::run_command(cmd_lm, "lm", {"--resume", ckpt, "--steps", "6"}).rc == 0);
    const test::CommandOutcome other = test::run_command(cmd_lm, "lm", {"--resume", ckpt, "--steps", "8", "--precision", "f32"});
    CHECK(other.rc == -1);
    CHECK_THAT(other.error, Contains("precision"));
}

TEST_CASE("a --precision that is unknown or cannot run here is refused before any output", "[cli][precision]") {
    const test::ScratchDir s("precision_refused");
    const test::CommandOutcome unknown =
        test::run_command(cmd_train, "train", small({"--precision", "fp16", "--out", s.dir}));
    CHECK(unknown.error == "latte train: --precision: the precision must be f32 or bf16, got 'fp16'");
    CHECK(unknown.stdout_text.empty());
    cpu::detail::set_bf16_refusal_for_testing("this CPU has neither AVX512_BF16 nor AMX-BF16 (test)");
    const test::CommandOutcome train = test::run_command(cmd_train, "train", small({"--precision", "bf16", "--out", s.dir}));
    const test::CommandOutcome lm =
        test::run_command(cmd_lm, "lm", {"--precision", "bf16", "--steps", "2", "--out", s.dir});
    cpu::detail::set_bf16_refusal_for_testing("");
    CHECK(train.error ==
          "latte train: --precision bf16 cannot run on cpu: this CPU has neither AVX512_BF16 nor AMX-BF16 (test)");
    CHECK(train.stdout_text.empty());
    CHECK(lm.error == "latte lm: --precision bf16 cannot run on cpu: this CPU has neither AVX512_BF16 nor AMX-BF16 (test)");
    CHECK(lm.stdout_text.empty());
}
