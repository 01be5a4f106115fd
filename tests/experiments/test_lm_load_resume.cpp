// `latte lm --load` runs and their checkpoints: a fine-tune of a loaded model resumes bit-identically
// with everything the file gave it (a RoPE base, an MLP width and K/V heads no flag sets); the model
// file is never one of the run's outputs; and the seeds and generation inputs that used to slip
// through are refused.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "experiments/lm_tasks.h"
#include "nn/decoder_lm.h"
#include "nn/serialize.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

test::CommandOutcome run_lm(std::vector<std::string> args) {
    return test::run_command(cmd_lm, "lm", std::move(args));
}

std::string bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An MHA language model with settings only the C++ API gives: RoPE base 5 and an MLP of width 24.
// Its file records G = H (the model's own normalisation), as every mha file does.
nn::DecoderLMConfig unusual_mha() {
    nn::DecoderLMConfig c;
    c.vocab = 11;
    c.width = 16;
    c.layers = 1;
    c.heads = 2;
    c.attention = nn::AttentionKind::MHA;
    c.rope_base = 5.0;
    c.mlp_hidden = 24;
    return c;
}

}  // namespace

TEST_CASE("latte lm: a --load run resumes bit-identically, keeping the loaded model's settings", "[lm][cli]") {
    const test::ScratchDir s("lm_load_resume");
    const std::string model = s / "base.safetensors";
    Generator gen(3);
    nn::save(nn::DecoderLM(unusual_mha(), gen), model);

    const std::vector<std::string> run{"--load", model, "--task", "recall", "--L", "7", "--batch", "4",
                                       "--lr", "0.01", "--eval-every", "0", "--eval-batches", "1", "--schedule",
                                       "constant"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> all = run;
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    const auto straight = run_lm(with({"--steps", "4", "--out", s.dir, "--name", "a", "--save", s / "a.safetensors"}));
    INFO(straight.stdout_text << straight.error);
    REQUIRE(straight.rc == 0);
    const auto first = run_lm(with({"--steps", "2", "--out", s.dir, "--name", "b", "--checkpoint", s / "ck.safetensors"}));
    REQUIRE(first.rc == 0);
    // A resume takes no --load; flags given must be the checkpoint's (the model's sizes included).
    const auto resumed = run_lm({"--resume", s / "ck.safetensors", "--task", "recall", "--L", "7", "--batch", "4",
                                 "--lr", "0.01", "--eval-every", "0", "--eval-batches", "1", "--schedule", "constant",
                                 "--attention", "mha",
                                 "--layers", "1", "--D", "16", "--H", "2", "--vocab", "11", "--steps", "4", "--out",
                                 s.dir, "--name", "b", "--save", s / "b.safetensors"});
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    const std::string dir = "/loss.csv";
    REQUIRE(!bytes(s / "a" + dir).empty());
    REQUIRE(bytes(s / "a" + dir) == bytes(s / "b" + dir));
    REQUIRE(bytes(s / "a.safetensors") == bytes(s / "b.safetensors"));
    const nn::DecoderLMConfig saved = nn::decoder_lm_file_config(s / "b.safetensors");
    REQUIRE(saved.rope_base == 5.0);
    REQUIRE(saved.mlp_hidden == 24);
}

TEST_CASE("latte lm refuses a --save or --checkpoint that is the --load file", "[lm][cli]") {
    const test::ScratchDir s("lm_load_outputs");
    const std::string model = s / "base.safetensors";
    Generator gen(3);
    nn::save(nn::DecoderLM(unusual_mha(), gen), model);
    const std::string before = bytes(model);
    const std::vector<std::string> run{"--load", model, "--L", "7", "--batch", "4", "--steps", "2", "--out", s.dir};
    for (const char* flag : {"--save", "--checkpoint"}) {
        std::vector<std::string> args = run;
        args.insert(args.end(), {flag, model});
        const auto o = run_lm(args);
        CAPTURE(flag);
        REQUIRE(o.error == std::string("latte lm: ") + flag + " '" + model + "' and --load '" + model +
                               "' are the same file (the run would overwrite the model it starts from)");
        REQUIRE(o.stdout_text.empty());
        REQUIRE(bytes(model) == before);
    }
}

TEST_CASE("latte lm refuses seeds whose streams would wrap onto another seed's", "[lm][cli]") {
    const auto o = run_lm({"--seed", "4611686018427387904", "--steps", "1"});
    REQUIRE(o.error == "latte lm: --seed must be between 0 and 4611686018427387903, got 4611686018427387904");
    REQUIRE(o.stdout_text.empty());
}

TEST_CASE("lm_generate refuses an empty batch, and DecoderLM negative sizes", "[lm]") {
    Generator gen(1);
    nn::DecoderLM lm(unusual_mha(), gen);
    const Tensor empty_batch = Tensor::empty({0, 3}, TensorOptions{}.with_dtype(DType::Int64));
    for (bool cache : {false, true})
        REQUIRE_THROWS_WITH(lm_generate(lm, empty_batch, 2, cache),
                            "lm_generate: expected a prompt (B >= 1, n >= 1) int64 and tokens >= 0, got int64 "
                            "[0,3] and tokens 2");
    for (int field = 0; field < 3; ++field) {
        nn::DecoderLMConfig c = unusual_mha();
        (field == 0 ? c.mlp_hidden : field == 1 ? c.head_dim : c.kv_heads) = -2;
        CAPTURE(field);
        REQUIRE_THROWS_WITH(nn::DecoderLM(c, gen),
                            Catch::Contains("must be 0 (the default) or positive") && Catch::Contains("=-2"));
    }
}
