// Issue 11 item 6 from the command line: `latte convert` on a whole language model keeps its
// held-out accuracy exactly (`latte lm --load FILE --steps 0` measures it), `latte lm --rope off`,
// steps to 99% and the run's summary.json.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "nn/decoder_lm.h"
#include "nn/json.h"
#include "nn/serialize.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

using Outcome = test::CommandOutcome;

Outcome run_lm(std::vector<std::string> args) { return test::run_command(cmd_lm, "lm", std::move(args)); }
Outcome run_convert(std::vector<std::string> args) {
    return test::run_command(cmd_convert, "convert", std::move(args));
}

using Scratch = test::ScratchDir;

nn::json::Value read_summary(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return nn::json::parse(text, path);
}

const nn::json::Value& field(const nn::json::Value& v, const std::string& key) {
    const nn::json::Value* f = v.find(key);
    INFO(key);
    REQUIRE(f != nullptr);
    return *f;
}

// The tiny recall model every test here trains: 1 layer, D=16, H=2, d=8.
std::vector<std::string> tiny(std::vector<std::string> extra) {
    std::vector<std::string> args{"--task", "recall", "--layers", "1", "--D", "16", "--H", "2", "--vocab", "11",
                                  "--L", "7", "--batch", "16", "--eval-batches", "4"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace

TEST_CASE("latte convert on a RoPE-free GQA LM gives an MLA LM with exactly the same held-out accuracy",
          "[lm][convert][cli]") {
    const Scratch s("lm_convert");
    const std::string gqa = s / "gqa.safetensors", mla = s / "mla.safetensors";
    const Outcome trained = run_lm(tiny({"--attention", "gqa", "--G", "1", "--rope", "off", "--steps", "60", "--lr",
                                         "0.01", "--eval-every", "20", "--out", s.dir, "--name", "gqa_run", "--save",
                                         gqa}));
    INFO(trained.stdout_text << trained.error);
    REQUIRE(trained.rc == 0);
    REQUIRE(trained.stdout_text.find("gqa attention without RoPE") != std::string::npos);
    const nn::json::Value train_summary = read_summary(s / "gqa_run/summary.json");
    REQUIRE(field(train_summary, "rope").boolean == false);
    REQUIRE(field(train_summary, "steps").integer == 60);
    REQUIRE(nn::read_safetensors_header(gqa).metadata.at("rope") == "false");

    const Outcome converted = run_convert({"--in", gqa, "--out", mla});
    INFO(converted.stdout_text << converted.error);
    REQUIRE(converted.rc == 0);
    REQUIRE(converted.stdout_text.find("converted a GQA language model -> MLA: 1 layers, D=16 H=2 d=8 G=1, latent "
                                       "rank r=16") != std::string::npos);
    REQUIRE(nn::read_safetensors_header(mla).metadata.at("attention") == "mla");

    // Both files evaluated on the same held-out set (same --seed): the same answers right.
    std::vector<nn::json::Value> evals;
    for (const std::string& file : {gqa, mla}) {
        const std::string name = file == gqa ? "gqa_eval" : "mla_eval";
        const Outcome o = run_lm(
            {"--task", "recall", "--L", "7", "--batch", "16", "--eval-batches", "4", "--load", file, "--steps", "0",
             "--out", s.dir, "--name", name});
        INFO(o.stdout_text << o.error);
        REQUIRE(o.rc == 0);
        REQUIRE(o.stdout_text.find("evaluating it only") != std::string::npos);
        REQUIRE(!std::filesystem::exists(s / (name + "/loss.csv")));  // nothing trained, nothing plotted
        evals.push_back(read_summary(s / (name + "/summary.json")));
    }
    const nn::json::Value &g = evals[0], &m = evals[1];
    REQUIRE(field(g, "attention").string == "gqa");
    REQUIRE(field(m, "attention").string == "mla");
    REQUIRE(field(m, "r").integer == 16);
    REQUIRE(field(m, "kv_bytes_per_token").integer == field(g, "kv_bytes_per_token").integer);  // 16 numbers x 4
    REQUIRE(field(g, "kv_bytes_per_token").integer == 64);
    REQUIRE(field(g, "held_out_total").integer == 64);
    REQUIRE(field(m, "held_out_correct").integer == field(g, "held_out_correct").integer);
    REQUIRE(field(m, "held_out_loss").number == Approx(field(g, "held_out_loss").number).epsilon(1e-5));
    REQUIRE(field(m, "steps").integer == 0);
    REQUIRE(field(m, "steps_to_99").kind == nn::json::Value::Kind::Null);
    REQUIRE(field(m, "loaded_from").string == mla);
    // The loaded GQA scores exactly what the run that trained it scored at its end.
    REQUIRE(field(g, "held_out_correct").integer == field(train_summary, "held_out_correct").integer);
    REQUIRE(field(g, "held_out_correct").integer > 0);  // it learned something
}

TEST_CASE("latte convert refuses a GQA language model with RoPE unless asked for partial RoPE, and says why",
          "[lm][convert][cli]") {
    const Scratch s("lm_convert_rope");
    const std::string gqa = s / "gqa_rope.safetensors", out = s / "mla.safetensors";
    REQUIRE(run_lm(tiny({"--attention", "gqa", "--G", "1", "--steps", "1", "--eval-every", "0", "--out", s.dir,
                         "--save", gqa}))
                .rc == 0);
    const Outcome o = run_convert({"--in", gqa, "--out", out});
    REQUIRE(o.error == "latte convert: " + gqa +
                           " holds a gqa language model with RoPE on q and k, which no MLA reproduces exactly: RoPE "
                           "rotates each key by its position, so the keys cannot be rebuilt from one position-free "
                           "latent W_DKV x. Train it with latte lm --attention gqa --rope off, or convert it by partial "
                           "RoPE with --rope-dim D_R (G = 1; not exact, fine-tune it afterwards)");
    REQUIRE(o.stdout_text.empty());
    REQUIRE(!std::filesystem::exists(out));

    // Partial RoPE: MLA + RoPE with 4 rotary dims per head and rank 6, which latte lm loads and fine-tunes.
    const Outcome partial = run_convert({"--in", gqa, "--out", out, "--rope-dim", "4", "--rank", "6"});
    INFO(partial.stdout_text << partial.error);
    REQUIRE(partial.rc == 0);
    REQUIRE(partial.stdout_text.find("MLA + RoPE by partial RoPE: 1 layers, D=16 H=2 d=8 G=1, latent rank r=6, rotary "
                                     "dims d_R=4 (the 2 fastest-turning pairs)") != std::string::npos);
    REQUIRE(partial.stdout_text.find("KV cache per position and layer: GQA 16 numbers, MLA + RoPE 10 numbers") !=
            std::string::npos);
    const nn::DecoderLMConfig converted = nn::decoder_lm_file_config(out);
    REQUIRE(converted.attention == nn::AttentionKind::MLARoPE);
    REQUIRE(!converted.latent_norm);
    REQUIRE(converted.rope_base == Approx(100.0));  // 10000^(4/8)
    const Outcome tuned = run_lm({"--load", out, "--task", "recall", "--L", "7", "--batch", "16", "--steps", "2",
                                  "--eval-every", "0", "--out", s.dir, "--name", "tuned"});
    INFO(tuned.stdout_text << tuned.error);
    REQUIRE(tuned.rc == 0);
    const std::string g2 = s / "gqa_g2.safetensors";
    REQUIRE(run_lm(tiny({"--attention", "gqa", "--G", "2", "--steps", "1", "--eval-every", "0", "--out", s.dir,
                         "--name", "g2", "--save", g2}))
                .rc == 0);
    REQUIRE_THAT(run_convert({"--in", g2, "--out", out, "--rope-dim", "4"}).error,
                 Catch::Contains("to_mla_rope: this gqa DecoderLM has G=2 K/V heads"));
    const std::string nope = s / "gqa_nope.safetensors";
    REQUIRE(run_lm(tiny({"--attention", "gqa", "--G", "1", "--rope", "off", "--steps", "1", "--eval-every", "0",
                         "--out", s.dir, "--name", "nope", "--save", nope}))
                .rc == 0);
    REQUIRE(run_convert({"--in", nope, "--out", out, "--rope-dim", "4"}).error ==
            "latte convert: --rope-dim 4 is for a gqa language model with RoPE; " + nope +
                " has none, and converts exactly to MLA without it");
    // An MLA language model is no GQA either.
    const std::string mla = s / "mla_lm.safetensors";
    REQUIRE(run_lm(tiny({"--attention", "mla", "--r", "4", "--steps", "1", "--eval-every", "0", "--out", s.dir,
                         "--save", mla}))
                .rc == 0);
    REQUIRE(run_convert({"--in", mla, "--out", out}).error ==
            "latte convert: " + mla + " holds a language model with mla attention; only a gqa one converts to MLA");
}

TEST_CASE("latte lm records the first evaluated step at 99% held-out accuracy across a resume too", "[lm][cli]") {
    const Scratch s("lm_steps99");
    // Recall with V=3, L=3: one key (1), one value (2), so the answer is always 2; learned in a few steps.
    const std::vector<std::string> flags{"--task", "recall", "--layers", "1", "--D", "16", "--H", "2", "--vocab",
                                         "3", "--L", "3", "--batch", "8", "--lr", "0.01", "--eval-every", "5",
                                         "--eval-batches", "2", "--attention", "mla", "--r", "4", "--schedule",
                                         "constant", "--warmup", "0"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> all = flags;
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    const Outcome whole = run_lm(with({"--steps", "40", "--out", s.dir, "--name", "whole"}));
    INFO(whole.stdout_text << whole.error);
    REQUIRE(whole.rc == 0);
    const nn::json::Value summary = read_summary(s / "whole/summary.json");
    const nn::json::Value& at = field(summary, "steps_to_99");
    REQUIRE(at.kind == nn::json::Value::Kind::Number);
    REQUIRE(at.integer % 5 == 0);
    REQUIRE((at.integer >= 5 && at.integer <= 40));
    REQUIRE(whole.stdout_text.find("99% held-out accuracy at step " + std::to_string(at.integer) + ";") !=
            std::string::npos);
    // The step printed before it shows held-out accuracy below 0.99, the one at it at least 0.99.
    REQUIRE(field(summary, "held_out_accuracy").number >= 0.99);
    REQUIRE(field(summary, "name").string == "whole");
    REQUIRE(field(summary, "G").integer == 0);
    REQUIRE(field(summary, "r").integer == 4);

    // Stopped after 10 steps (before or after the 99% step) and resumed: the same step is reported.
    const std::string ckpt = s / "part/checkpoint.safetensors";
    REQUIRE(run_lm(with({"--steps", "10", "--out", s.dir, "--name", "part"})).rc == 0);
    const Outcome resumed = run_lm(with({"--steps", "40", "--out", s.dir, "--name", "part", "--resume", ckpt}));
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    REQUIRE(field(read_summary(s / "part/summary.json"), "steps_to_99").integer == at.integer);
}

TEST_CASE("latte lm refuses bad --rope --name and --load flags before any output", "[lm][cli]") {
    auto refused = [](const std::vector<std::string>& args, const std::string& message) {
        const Outcome o = run_lm(args);
        CAPTURE(args);
        REQUIRE(o.error == message);
        REQUIRE(o.stdout_text.empty());
    };
    refused({"--rope", "maybe"}, "latte lm: --rope must be on or off, got 'maybe'");
    refused({"--attention", "mla", "--rope", "off"},
            "latte lm: --rope has no effect with --attention mla (mla has no RoPE on q and k; mla_rope's decoupled "
            "RoPE is always on)");
    refused({"--name", "a/b"}, "latte lm: --name must be a folder name (not empty, '.' or '..', no '/'), got 'a/b'");
    refused({"--name", ".."}, "latte lm: --name must be a folder name (not empty, '.' or '..', no '/'), got '..'");
    refused({"--steps", "0"}, "latte lm: --steps must be at least 1, got 0");

    const Scratch s("lm_load_flags");
    const std::string file = s / "m.safetensors";
    REQUIRE(run_lm(tiny({"--attention", "gqa", "--G", "1", "--steps", "1", "--eval-every", "0", "--out", s.dir,
                         "--save", file}))
                .rc == 0);
    refused({"--load", file, "--D", "16"},
            "latte lm: --D has no effect with --load (the file gives the model and its sizes)");
    refused({"--load", file, "--rope", "off"},
            "latte lm: --rope has no effect with --load (the file gives the model and its sizes)");
    refused({"--load", file, "--resume", file},
            "latte lm: --resume has no effect with --load (a checkpoint holds its own weights)");
    refused({"--load", file, "--L", "7", "--steps", "0", "--lr", "0.1"},
            "latte lm: --lr has no effect with --steps 0 (the loaded model is only evaluated)");
    // --load with steps trains on from the file's weights (its own run folder, checkpoint and summary).
    const Outcome tuned = run_lm({"--load", file, "--L", "7", "--batch", "4", "--steps", "2", "--eval-every", "0",
                                  "--eval-batches", "1", "--out", s.dir, "--name", "tuned"});
    INFO(tuned.stdout_text << tuned.error);
    REQUIRE(tuned.rc == 0);
    REQUIRE(tuned.stdout_text.find("loaded " + file + "\n") != std::string::npos);
    REQUIRE(std::filesystem::exists(s / "tuned/checkpoint.safetensors"));
    const nn::json::Value tuned_summary = read_summary(s / "tuned/summary.json");
    REQUIRE(field(tuned_summary, "steps").integer == 2);
    REQUIRE(field(tuned_summary, "loaded_from").string == file);
    REQUIRE(field(tuned_summary, "G").integer == 1);
    // The file's vocab (11) is checked against the task like --vocab: recall with L 17 needs 17.
    const Outcome small = run_lm({"--load", file, "--steps", "0"});
    REQUIRE(small.error.rfind("latte lm: --vocab 11 is too small for recall with --L 17", 0) == 0);
    REQUIRE(small.stdout_text.empty());
    const Outcome missing = run_lm({"--load", s / "missing.safetensors", "--steps", "0"});
    REQUIRE(missing.error.find(s / "missing.safetensors") != std::string::npos);
    REQUIRE(missing.stdout_text.empty());
}
