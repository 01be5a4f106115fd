// What a resumed run reads besides its checkpoint, and what it trusts: the --data file must be the
// one the run began with (its digest is in the checkpoint), the --init file is not read at all
// (the weights come from the checkpoint), a checkpoint of the other training command is named as
// such, and a stored flag the command line replaces must still be a valid value. Also: a
// --checkpoint that already exists is another run's unless it is the --resume file, and
// --overwrite clears any command's run files from the folder.
#include <filesystem>
#include <fstream>
#include <tuple>
#include <vector>

#include "experiments/checkpoint.h"
#include "experiments/commands.h"
#include "experiments/rank_agreement.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"
#include "tests/support/tamper.h"

using namespace latte;
using namespace latte::experiments;
using Catch::Matchers::Contains;

namespace {

const std::vector<std::string> kSmall{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--log-every", "0"};

std::vector<std::string> small(std::vector<std::string> extra) {
    extra.insert(extra.begin(), kSmall.begin(), kSmall.end());
    return extra;
}

// x, y, target for `latte train --data`: 8 rows of length 4, width 16; target's first value is `target_0`.
void write_data(const std::string& path, float target_0) {
    Generator gen(11);
    std::vector<float> target = randn({8, 4, 16}, gen).to_vector<float>();
    target[0] = target_0;
    nn::save_safetensors(path, {{"x", randn({8, 4, 16}, gen)}, {"y", randn({8, 4, 16}, gen)},
                                {"target", from_vector(target, {8, 4, 16})}});
}

}  // namespace

TEST_CASE("train --resume refuses a --data file whose contents changed since the run began, naming both digests",
          "[train][resume]") {
    const test::ScratchDir s("resume_data_digest");
    const std::string data = s / "data.safetensors";
    write_data(data, 0.5f);
    const std::string before = file_digest(data, "test");
    REQUIRE(test::run_command(cmd_train, "train", small({"--steps", "3", "--data", data, "--out", s.dir, "--name", "d"}))
                .rc == 0);
    const std::string ckpt = s / "d/checkpoint.safetensors";
    REQUIRE(nn::read_safetensors_header(ckpt).metadata.at("config.data-digest") == before);
    write_data(data, 5.0f);  // one value changed, the size the same
    const std::string after = file_digest(data, "test");
    REQUIRE(after != before);
    const test::CommandOutcome changed = test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "5"});
    REQUIRE(changed.error == "latte train: cannot resume from " + ckpt + ": its --data '" + data +
                                 "' has changed since the run began (the checkpoint has " + before +
                                 ", the file now has " + after + "); a resumed run must train on the same data");
    REQUIRE(changed.stdout_text.empty());
    // The file as it was resumes.
    write_data(data, 0.5f);
    REQUIRE(test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "5"}).rc == 0);
    REQUIRE(load_checkpoint(ckpt).step == 5);
    // A checkpoint written before the digest was stored resumes, with a note that it cannot check.
    const std::string old = s / "old.safetensors";
    test::tamper(ckpt, old, [](test::Metadata& m, test::Tensors&) { m.erase("config.data-digest"); });
    const test::CommandOutcome older = test::run_command(
        cmd_train, "train", {"--resume", old, "--steps", "6", "--out", s.dir, "--name", "old"});
    REQUIRE(older.rc == 0);
    // The checkpoint it wrote has the digest now.
    REQUIRE(nn::read_safetensors_header(old).metadata.at("config.data-digest") == before);
}

TEST_CASE("train --resume does not read the --init file: it may be gone or changed", "[train][resume]") {
    const test::ScratchDir s("resume_without_init");
    const std::string init = s / "init.safetensors";
    REQUIRE(test::run_command(cmd_train, "train",
                              small({"--steps", "2", "--L", "4", "--save", init, "--out", s.dir, "--name", "w"}))
                .rc == 0);
    auto run = [&](const std::string& name, const std::string& steps) {
        return test::run_command(cmd_train, "train",
                                 small({"--steps", steps, "--L", "4", "--init", init, "--out", s.dir, "--name", name}));
    };
    REQUIRE(run("straight", "6").rc == 0);
    REQUIRE(run("stopped", "3").rc == 0);
    std::filesystem::remove(init);
    const std::string ckpt = s / "stopped/checkpoint.safetensors";
    const test::CommandOutcome resumed = test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "6"});
    INFO(resumed.error);
    REQUIRE(resumed.rc == 0);
    // The run it continues is the one that began from the file, to the bit.
    const TrainCheckpoint a = load_checkpoint(ckpt), b = load_checkpoint(s / "straight/checkpoint.safetensors");
    REQUIRE(test::same_bytes(a.losses, b.losses));
    // --init given again, naming the file that is gone, is the checkpoint's own: still not read.
    REQUIRE(test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "7", "--init", init}).rc == 0);
}

TEST_CASE("a checkpoint of latte lm given to latte train --resume, or the reverse, names the command that wrote it",
          "[train][lm][resume]") {
    const test::ScratchDir s("resume_other_command");
    REQUIRE(test::run_command(cmd_lm, "lm", {"--D", "16", "--H", "2", "--layers", "1", "--batch", "4", "--steps", "2",
                                             "--eval-every", "0", "--out", s.dir, "--name", "lm"})
                .rc == 0);
    REQUIRE(test::run_command(cmd_train, "train", small({"--steps", "2", "--L", "4", "--out", s.dir, "--name", "tr"}))
                .rc == 0);
    const std::string lm_ckpt = s / "lm/checkpoint.safetensors", train_ckpt = s / "tr/checkpoint.safetensors";
    const test::CommandOutcome train = test::run_command(cmd_train, "train", {"--resume", lm_ckpt, "--steps", "4"});
    REQUIRE(train.error == "latte train: cannot resume from " + lm_ckpt +
                               ": it is a latte lm checkpoint (module decoder_lm, task recall): resume it with latte "
                               "lm --resume " + lm_ckpt);
    const test::CommandOutcome lm = test::run_command(cmd_lm, "lm", {"--resume", train_ckpt, "--steps", "4"});
    REQUIRE(lm.error == "latte lm: cannot resume from " + train_ckpt +
                            ": it is a latte train checkpoint (a mha student of the teacher-student task): resume it "
                            "with latte train --resume " + train_ckpt);
}

TEST_CASE("a stored flag is checked even when the command line gives the flag", "[train][resume][cli]") {
    const test::ScratchDir s("resume_stored_checked");
    REQUIRE(test::run_command(cmd_train, "train", small({"--steps", "3", "--L", "4", "--out", s.dir, "--name", "a"}))
                .rc == 0);
    const std::string ckpt = s / "a/checkpoint.safetensors", bad = s / "bad.safetensors";
    for (const auto& [key, value, message] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"steps", "3abc", "expects an integer, got '3abc'"},
             {"steps", "-2", "must be at least 1, got -2"},
             {"log-every", "x", "expects an integer, got 'x'"},
             {"checkpoint-every", "-1", "must be at least 0, got -1"}}) {
        INFO(key << "=" << value);
        test::tamper(ckpt, bad, [&](test::Metadata& m, test::Tensors&) { m["config." + key] = value; });
        const std::string given = key == "steps" ? "12" : "1";
        const test::CommandOutcome r =
            test::run_command(cmd_train, "train", {"--resume", bad, "--" + key, given, "--out", s.dir, "--name", "b"});
        REQUIRE(r.error == "latte train: --" + key + " (from the checkpoint " + bad + ", which the command line's --" +
                               key + " replaces) " + message);
        REQUIRE(r.stdout_text.empty());
    }
    // Untampered, the same command line runs.
    REQUIRE(test::run_command(cmd_train, "train", {"--resume", ckpt, "--steps", "5"}).rc == 0);
}

TEST_CASE("an existing --checkpoint file is refused unless it is the --resume file or --overwrite is given",
          "[train][lm][run-folder]") {
    const test::ScratchDir s("checkpoint_of_another_run");
    REQUIRE(test::run_command(cmd_train, "train", small({"--steps", "2", "--L", "4", "--out", s.dir, "--name", "a"}))
                .rc == 0);
    const std::string a_ckpt = s / "a/checkpoint.safetensors";
    const std::string before = test::file_bytes(a_ckpt);
    const std::vector<std::string> b = small({"--steps", "3", "--L", "4", "--out", s.dir, "--name", "b", "--checkpoint", a_ckpt});
    const test::CommandOutcome refused = test::run_command(cmd_train, "train", b);
    REQUIRE(refused.error == "latte train: --checkpoint '" + a_ckpt + "' already exists, and it is not the --resume "
                             "file of this run (it may be another run's checkpoint): give --overwrite to replace it, "
                             "choose another --checkpoint, or --resume " + a_ckpt + " to continue it");
    REQUIRE(refused.stdout_text.empty());
    REQUIRE(test::file_bytes(a_ckpt) == before);
    REQUIRE(!std::filesystem::exists(s / "b"));  // the refused run left no folder
    // The same for latte lm.
    const test::CommandOutcome lm = test::run_command(
        cmd_lm, "lm", {"--D", "16", "--H", "2", "--layers", "1", "--steps", "1", "--out", s.dir, "--checkpoint", a_ckpt});
    REQUIRE_THAT(lm.error, Contains("latte lm: --checkpoint '" + a_ckpt + "' already exists"));
    // Continuing the run that wrote it, with the file named both ways, is fine.
    REQUIRE(test::run_command(cmd_train, "train", {"--resume", a_ckpt, "--checkpoint", a_ckpt, "--steps", "4"}).rc == 0);
    // --overwrite replaces it.
    std::vector<std::string> forced = b;
    forced.push_back("--overwrite");
    REQUIRE(test::run_command(cmd_train, "train", forced).rc == 0);
    REQUIRE(load_checkpoint(a_ckpt).step == 3);
}

TEST_CASE("an --overwrite run removes the run files of any command from the folder, and any of them makes it a run's",
          "[run-folder][train][lm]") {
    const test::ScratchDir s("overwrite_other_command");
    REQUIRE(test::run_command(cmd_lm, "lm", {"--D", "16", "--H", "2", "--layers", "1", "--batch", "4", "--steps", "2",
                                             "--eval-every", "0", "--out", s.dir, "--name", "r"})
                .rc == 0);
    for (const char* file : {"summary.json", "eval.csv", "accuracy.svg"}) REQUIRE(std::filesystem::exists(s / (std::string("r/") + file)));
    REQUIRE(test::run_command(cmd_train, "train", small({"--steps", "2", "--L", "4", "--out", s.dir, "--name", "r",
                                                         "--overwrite"}))
                .rc == 0);
    for (const char* file : {"summary.json", "eval.csv", "accuracy.svg"}) {
        INFO(file);
        REQUIRE(!std::filesystem::exists(s / (std::string("r/") + file)));
    }
    for (const char* file : {"loss.csv", "loss.svg", "checkpoint.safetensors"}) REQUIRE(std::filesystem::exists(s / (std::string("r/") + file)));
    // A folder holding only an evaluation's summary.json (latte lm --steps 0) holds a run too.
    std::filesystem::create_directories(s / "e");
    std::ofstream(s / "e/summary.json") << "{}\n";
    const test::CommandOutcome refused =
        test::run_command(cmd_train, "train", small({"--steps", "2", "--L", "4", "--out", s.dir, "--name", "e"}));
    REQUIRE_THAT(refused.error, Contains("the run folder '" + s / "e" + "' already holds a run (summary.json)"));
}
