// `latte lm` in-process: a tiny run writes its files, learning lowers the loss, and bad flags
// fail before any output with exact messages.
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "experiments/commands.h"
#include "nn/serialize.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

using Outcome = test::CommandOutcome;

// `latte lm args...` in-process with stdout captured.
Outcome run_lm(std::vector<std::string> args) { return test::run_command(cmd_lm, "lm", std::move(args)); }

void require_refused(const std::vector<std::string>& args, const std::string& message) {
    const Outcome o = run_lm(args);
    CAPTURE(args);
    REQUIRE(o.error == message);
    REQUIRE(o.stdout_text.empty());
}

std::vector<double> csv_column(const std::string& path, size_t column) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    REQUIRE(line == "step,loss,accuracy");
    std::vector<double> values;
    while (std::getline(in, line)) {
        std::stringstream row(line);
        std::string cell;
        for (size_t i = 0; i <= column; ++i) std::getline(row, cell, ',');
        values.push_back(std::stod(cell));
    }
    return values;
}

}  // namespace

TEST_CASE("latte lm: a tiny run writes loss.csv and the plots and the weights and the final line", "[lm][cli]") {
    const std::string out = test::temp_path("lm_out");
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(out);
    const std::string save = out + "/model.safetensors";
    const Outcome o = run_lm({"--task", "recall", "--attention", "gqa", "--layers", "1", "--D", "16", "--H", "2",
                              "--G", "1", "--vocab", "11", "--L", "7", "--batch", "4", "--steps", "4", "--eval-every",
                              "2", "--eval-batches", "1", "--generate", "2", "--out", out, "--name", "tiny", "--save",
                              save});
    INFO(o.stdout_text);
    REQUIRE(o.error.empty());
    REQUIRE(o.rc == 0);
    const std::string dir = out + "/tiny";
    for (const char* f : {"loss.csv", "loss.svg", "accuracy.svg"}) REQUIRE(std::filesystem::exists(dir + "/" + f));
    REQUIRE(std::filesystem::exists(save));
    REQUIRE(csv_column(dir + "/loss.csv", 1).size() == 4);
    for (double a : csv_column(dir + "/loss.csv", 2)) REQUIRE((a >= 0 && a <= 1));
    REQUIRE(o.stdout_text.find("step 2/4  loss ") != std::string::npos);
    REQUIRE(o.stdout_text.find("tokens/s  ETA ") != std::string::npos);
    REQUIRE(o.stdout_text.find("generate 1: ") != std::string::npos);
    // GQA with G=1, d=8 caches K and V: 16 numbers per layer, 4 bytes each.
    REQUIRE(o.stdout_text.find("KV cache 64 bytes/token (1 layers x 16 numbers x 4 bytes)") != std::string::npos);
    REQUIRE(o.stdout_text.find("final: held-out accuracy ") != std::string::npos);
    std::filesystem::remove_all(out);
}

TEST_CASE("latte lm: training lowers the loss on recall", "[lm]") {
    const std::string out = test::temp_path("lm_learn");
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(out);
    const Outcome o = run_lm({"--task", "recall", "--attention", "mla_rope", "--layers", "1", "--D", "16", "--H", "2",
                              "--r", "8", "--d_R", "4", "--vocab", "9", "--L", "5", "--batch", "16", "--steps", "40",
                              "--lr", "0.01", "--eval-every", "0", "--eval-batches", "1", "--out", out, "--name", "learn"});
    INFO(o.stdout_text);
    REQUIRE(o.rc == 0);
    const std::vector<double> loss = csv_column(out + "/learn/loss.csv", 1);
    REQUIRE(loss.size() == 40);
    double first = 0, last = 0;
    for (size_t i = 0; i < 5; ++i) {
        first += loss[i];
        last += loss[loss.size() - 1 - i];
    }
    REQUIRE(last < 0.8 * first);
    std::filesystem::remove_all(out);
}

TEST_CASE("latte lm: bad flags fail before any output", "[lm][cli]") {
    require_refused({"--task", "sort"}, "latte lm: --task must be recall, copy, modadd or mqar, got 'sort'");
    require_refused({"--attention", "mqa"}, "latte lm: --attention must be mha, gqa, mla or mla_rope, got 'mqa'");
    require_refused({"--G", "2"}, "latte lm: --G has no effect with --attention mha (only gqa has K/V head groups)");
    require_refused({"--attention", "gqa", "--r", "8"},
                    "latte lm: --r has no effect with --attention gqa (only mla and mla_rope have a latent rank)");
    require_refused({"--attention", "mla", "--d_R", "8"},
                    "latte lm: --d_R has no effect with --attention mla (only mla_rope has a decoupled RoPE dim)");
    require_refused({"--attention", "mla_rope", "--d_R", "3"}, "latte lm: --d_R must be even, got 3");
    require_refused({"--attention", "gqa", "--G", "3"},
                    "latte lm: --H 4 is not a multiple of --G 3 (GQA shares each K/V head among H/G query heads)");
    require_refused({"--D", "10"}, "latte lm: --D 10 is not a multiple of --H 4");
    require_refused({"--vocab", "8"},
                    "latte lm: --vocab 8 is too small for recall with --L 17 (8 distinct keys plus values need a "
                    "vocab of at least 17)");
    require_refused({"--task", "modadd", "--L", "3"}, "latte lm: --L 3 is too short for modadd (\"a + b =\" needs 4)");
    require_refused({"--steps", "0"}, "latte lm: --steps must be at least 1, got 0");
    require_refused({"--weight-decay", "-1"}, "latte lm: --weight-decay must be non-negative, got -1");
    require_refused({"--save", ""}, "latte lm: --save needs a file name, got ''");
    const Outcome huge = run_lm({"--D", "4000000", "--H", "1", "--vocab", "100000"});
    REQUIRE(huge.error.rfind("latte lm: needs about ", 0) == 0);
    REQUIRE(huge.stdout_text.empty());
}

TEST_CASE("latte lm is a latte command", "[lm][cli]") {
    // Dispatched (an unknown command exits 2): the flag error exits 1.
    std::vector<std::string> args{"latte", "lm", "--task", "sort"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    REQUIRE(latte_main(static_cast<int>(argv.size()), argv.data()) == 1);
}

TEST_CASE("latte lm: a resumed run is bit-identical to an uninterrupted one", "[lm][cli]") {
    const std::string out = test::temp_path("lm_resume");
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(out + "/a");
    std::filesystem::create_directories(out + "/b");
    const std::vector<std::string> flags{"--task", "copy", "--attention", "mla", "--layers", "1", "--D", "16", "--H",
                                         "2", "--r", "8", "--vocab", "7", "--L", "7", "--batch", "3", "--lr", "0.01",
                                         "--eval-every", "0", "--eval-batches", "1", "--schedule", "constant",
                                         "--warmup", "2"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> all = flags;
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    REQUIRE(run_lm(with({"--steps", "6", "--out", out, "--name", "a", "--save", out + "/a.safetensors"})).rc == 0);
    REQUIRE(run_lm(with({"--steps", "3", "--out", out, "--name", "b", "--checkpoint-every", "2"})).rc == 0);
    const std::string ckpt = out + "/b/checkpoint.safetensors";
    // The other flags are the checkpoint's, and the files go on in its folder.
    const Outcome resumed = run_lm({"--steps", "6", "--resume", ckpt, "--save", out + "/b.safetensors"});
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    REQUIRE(resumed.stdout_text.find("resuming from " + ckpt + " at step 3") != std::string::npos);
    auto bytes = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    REQUIRE(bytes(out + "/a/loss.csv") == bytes(out + "/b/loss.csv"));
    REQUIRE(bytes(out + "/a.safetensors") == bytes(out + "/b.safetensors"));
    REQUIRE(!bytes(out + "/a.safetensors").empty());
    // A different run is refused before any output.
    require_refused(with({"--steps", "6", "--seed", "1", "--resume", ckpt}),
                    "latte lm: cannot resume from " + ckpt + ": it was written with --seed 0, this run has --seed 1 "
                    "(leave --seed out to keep the checkpoint's; only --steps and the output, progress and device "
                    "flags may change)");
    std::filesystem::remove_all(out);
}

TEST_CASE("latte lm: the recipe (warm-up, cosine, clipping, beta2 0.95) is recorded and resumes as laid out",
          "[lm][cli]") {
    const test::ScratchDir s("lm_recipe");
    const std::vector<std::string> flags{"--task", "mqar", "--pairs", "3", "--queries", "2", "--attention", "mla_rope",
                                         "--layers", "1", "--D", "16", "--H", "2", "--r", "4", "--d_R", "2",
                                         "--vocab", "9", "--batch", "3", "--lr", "0.01", "--eval-every", "2",
                                         "--eval-batches", "1", "--warmup", "2", "--schedule", "cosine"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> all = flags;
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    const Outcome six = run_lm(with({"--steps", "6", "--out", s.dir, "--name", "six"}));
    INFO(six.stdout_text << six.error);
    REQUIRE(six.rc == 0);
    REQUIRE(six.stdout_text.find("lm mqar (3 pairs, 2 queries), mla_rope attention: 1 layers, D=16 H=2 r=4 d_R=2, "
                                 "latent norm, vocab 9, L 10") != std::string::npos);
    REQUIRE(six.stdout_text.find("AdamW lr 0.01 (betas 0.9, 0.95), weight decay 0.1; 2 warm-up steps, then cosine to "
                                 "0.1000 x lr; gradient clip 1.0000") != std::string::npos);
    const auto meta = nn::load_safetensors(s / "six/checkpoint.safetensors").metadata;
    REQUIRE(meta.at("optimizer.beta2") == "0.95");
    REQUIRE(meta.at("config.clip") == "1");
    REQUIRE(meta.at("config.schedule") == "cosine");
    REQUIRE(meta.at("config.schedule-steps") == "6");
    REQUIRE(meta.at("config.latent-norm") == "on");
    REQUIRE(std::stod(meta.at("optimizer.lr")) == Approx(0.001).epsilon(1e-12));  // the cosine's end at the last step
    // eval.csv: every evaluation, 2 answers per sequence x 3 sequences.
    std::ifstream eval(s / "six/eval.csv");
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(eval, line)) lines.push_back(line);
    REQUIRE(lines.size() == 4);
    REQUIRE(lines[0] == "step,held_out_accuracy,held_out_correct,held_out_total");
    REQUIRE(lines[3].rfind("6,", 0) == 0);
    REQUIRE(lines[3].substr(lines[3].size() - 2) == ",6");

    // Three steps, resumed to six: the schedule stays laid over three, so steps 4-6 run at its end rate.
    REQUIRE(run_lm(with({"--steps", "3", "--out", s.dir, "--name", "three"})).rc == 0);
    const std::string ckpt = s / "three/checkpoint.safetensors";
    const Outcome resumed = run_lm(with({"--steps", "6", "--out", s.dir, "--name", "three", "--resume", ckpt}));
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    const auto after = nn::load_safetensors(ckpt).metadata;
    REQUIRE(after.at("config.schedule-steps") == "3");
    REQUIRE(std::stod(after.at("optimizer.lr")) == Approx(0.001).epsilon(1e-12));
    std::ifstream resumed_eval(s / "three/eval.csv");
    int rows = 0;
    while (std::getline(resumed_eval, line)) ++rows;
    REQUIRE(rows == 1 + 4);  // steps 2 and 3 (the end of the first run) carried over, then 4 and 6
    require_refused(with({"--steps", "6", "--out", s.dir, "--name", "three", "--resume", ckpt, "--beta2", "0.999"}),
                    "latte lm: cannot resume from " + ckpt + ": it was written with --beta2 0.95, this run has --beta2 "
                    "0.999 (leave --beta2 out to keep the checkpoint's; only --steps and the output, progress and "
                    "device flags may change)");
    require_refused(with({"--steps", "6", "--out", s.dir, "--name", "x", "--clip", "-1"}),
                    "latte lm: --clip must be 0 (off) or positive, got -1");
    require_refused({"--steps", "6", "--warmup", "6"},
                    "latte lm: --warmup 6 must be below --steps 6");
    require_refused({"--schedule", "linear"},
                    "latte lm: --schedule must be cosine or constant, got 'linear'");
    // The defaults: a constant rate after an automatic warm-up (10% of the steps, at most 100).
    const Outcome plain = run_lm({"--steps", "20", "--layers", "1", "--D", "16", "--H", "2", "--vocab", "11", "--L", "7",
                                  "--batch", "2", "--eval-every", "0", "--eval-batches", "1", "--out", s.dir, "--name",
                                  "defaults"});
    REQUIRE(plain.rc == 0);
    REQUIRE(plain.stdout_text.find("AdamW lr 0.001 (betas 0.9, 0.95), weight decay 0.1; 2 warm-up steps, then constant; "
                                   "gradient clip 1.0000") != std::string::npos);
    require_refused({"--task", "recall", "--pairs", "4"},
                    "latte lm: --pairs has no effect with --task recall (only mqar has key-value pairs to set)");
    require_refused({"--attention", "mha", "--latent-norm", "off"},
                    "latte lm: --latent-norm has no effect with --attention mha (only mla and mla_rope have a latent)");
    require_refused({"--attention", "mla", "--rope-pairing", "interleaved"},
                    "latte lm: --rope-pairing has no effect without RoPE (--attention mla)");
}
