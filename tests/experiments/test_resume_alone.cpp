// `latte train --resume FILE` and `latte lm --resume FILE` alone continue a run: the flags come from
// the checkpoint, the files go to its folder, and the end is the uninterrupted run's, to the bit.
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "experiments/checkpoint.h"
#include "experiments/stop_signal.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

// Runs `command` while another thread asks it to stop (as Ctrl-C does) as soon as `file` exists.
test::CommandOutcome run_until_file_appears(test::Command command, const std::string& name,
                                            const std::vector<std::string>& args, const std::string& file) {
    std::atomic<bool> done{false};
    std::thread stopper([&] {
        while (!done && !std::filesystem::exists(file)) std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (!done) request_stop(SIGINT);
    });
    const test::CommandOutcome out = test::run_command(command, name, args);
    done = true;
    stopper.join();
    clear_stop_request();
    return out;
}

}  // namespace

TEST_CASE("latte train stopped by Ctrl-C continues with --resume FILE alone, to the uninterrupted run's bytes",
          "[train][resume]") {
    const test::ScratchDir s("resume_alone_train");
    const std::vector<std::string> flags{"--model", "gqa", "--D", "16", "--H", "2", "--d", "8", "--G", "1",
                                         "--batch", "4", "--L", "4", "--seed", "3", "--lr", "0.01", "--steps", "60",
                                         "--checkpoint-every", "4", "--log-every", "0", "--out", s.dir};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), flags.begin(), flags.end());
        return extra;
    };
    const test::CommandOutcome straight = test::run_command(cmd_train, "train", with({"--name", "straight"}));
    REQUIRE(straight.rc == 0);
    const std::string ckpt = s / "stopped/checkpoint.safetensors";
    const test::CommandOutcome stopped = run_until_file_appears(cmd_train, "train", with({"--name", "stopped"}), ckpt);
    INFO(stopped.stdout_text << stopped.error);
    REQUIRE(stopped.rc == 128 + SIGINT);
    const int64_t step = load_checkpoint(ckpt).step;
    REQUIRE((step >= 4 && step < 60));
    // Every write is announced with its step and path.
    REQUIRE_THAT(stopped.stdout_text, Catch::Contains("checkpoint at step 4: " + ckpt + "\n"));
    REQUIRE_THAT(stopped.stdout_text,
                 Catch::Contains("checkpoint at step " + std::to_string(step) + ": " + ckpt + "\n"));

    const test::CommandOutcome resumed = test::run_command(cmd_train, "train", {"--resume", ckpt});
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    REQUIRE_THAT(resumed.stdout_text, Catch::StartsWith("training gqa student: D=16 H=2 d=8 G=1, batch 4, L 4, 60 "
                                                        "steps, in " + s.dir + "/stopped, resuming from " + ckpt));
    for (const char* file : {"loss.csv", "loss.svg", "checkpoint.safetensors"}) {
        CAPTURE(file);
        REQUIRE(test::file_bytes(s / "straight/" + file) == test::file_bytes(s / "stopped/" + file));
    }
}

TEST_CASE("latte train --resume refuses a given flag that differs from the checkpoint's, naming both values",
          "[train][resume]") {
    const test::ScratchDir s("resume_alone_conflict");
    REQUIRE(test::run_train({"--model", "mla", "--D", "16", "--H", "2", "--d", "8", "--r", "4", "--batch", "2", "--L",
                             "3", "--steps", "3", "--out", s.dir, "--name", "run"}) == 0);
    const std::string ckpt = s / "run/checkpoint.safetensors";
    const std::string tail = " out to keep the checkpoint's; only --steps and the output, progress and device flags "
                             "may change)";
    auto refused = [&](std::vector<std::string> args, const std::string& message) {
        args.insert(args.end(), {"--resume", ckpt});
        const test::CommandOutcome o = test::run_command(cmd_train, "train", args);
        REQUIRE(o.error == message);
        REQUIRE(o.stdout_text.empty());
    };
    // The conflict is named before any check the adopted flags would fail (D = H * d).
    refused({"--D", "32"}, "latte train: cannot resume from " + ckpt +
                               ": it was written with --D 16, this run has --D 32 (leave --D" + tail);
    refused({"--r", "8"}, "latte train: cannot resume from " + ckpt +
                              ": it was written with --r 4, this run has --r 8 (leave --r" + tail);
    refused({"--steps", "2"}, "latte train: " + ckpt + " is at step 3, beyond --steps 2");
    // The same value in another spelling is no conflict; --steps may grow.
    const test::CommandOutcome grown = test::run_command(cmd_train, "train", {"--lr", "3e-3", "--steps", "5",
                                                                              "--resume", ckpt});
    INFO(grown.error);
    REQUIRE(grown.rc == 0);
    REQUIRE(load_checkpoint(ckpt).step == 5);
    REQUIRE(load_checkpoint(ckpt).run_config.at("steps") == "5");
    // A stored value that is not a valid flag value is named with its source.
    nn::SafetensorsFile file = nn::load_safetensors(ckpt);
    file.metadata["config.batch"] = "x";
    const std::string bad = s / "bad.safetensors";
    nn::save_safetensors(bad, file.tensors, file.metadata);
    const test::CommandOutcome o = test::run_command(cmd_train, "train", {"--resume", bad});
    REQUIRE(o.error == "latte train: --batch (from the checkpoint " + bad + ") expects an integer, got 'x'");
}

TEST_CASE("latte lm stopped by Ctrl-C continues with --resume FILE alone, to the uninterrupted run's bytes",
          "[lm][resume]") {
    const test::ScratchDir s("resume_alone_lm");
    const std::vector<std::string> flags{"--task", "mqar", "--pairs", "3", "--queries", "2", "--attention", "gqa",
                                         "--G", "1", "--layers", "1", "--D", "16", "--H", "2", "--vocab", "9",
                                         "--batch", "3", "--lr", "0.01", "--steps", "40", "--schedule", "cosine",
                                         "--warmup", "3", "--eval-every", "10", "--eval-batches", "1",
                                         "--checkpoint-every", "4", "--out", s.dir};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), flags.begin(), flags.end());
        return extra;
    };
    REQUIRE(test::run_command(cmd_lm, "lm", with({"--name", "straight"})).rc == 0);
    const std::string ckpt = s / "stopped/checkpoint.safetensors";
    const test::CommandOutcome stopped = run_until_file_appears(cmd_lm, "lm", with({"--name", "stopped"}), ckpt);
    INFO(stopped.stdout_text << stopped.error);
    REQUIRE(stopped.rc == 128 + SIGINT);
    REQUIRE(load_checkpoint(ckpt).step < 40);
    const test::CommandOutcome resumed = test::run_command(cmd_lm, "lm", {"--resume", ckpt});
    INFO(resumed.stdout_text << resumed.error);
    REQUIRE(resumed.rc == 0);
    for (const char* file : {"loss.csv", "eval.csv", "loss.svg", "accuracy.svg", "checkpoint.safetensors"}) {
        CAPTURE(file);
        std::string stopped_bytes = test::file_bytes(s / "stopped/" + file);
        // The plots' titles name the run.
        for (size_t at; (at = stopped_bytes.find("latte lm: stopped ")) != std::string::npos;)
            stopped_bytes.replace(at, 18, "latte lm: straight ");
        REQUIRE(test::file_bytes(s / "straight/" + file) == stopped_bytes);
    }
    const test::CommandOutcome conflict = test::run_command(cmd_lm, "lm", {"--resume", ckpt, "--G", "2"});
    REQUIRE(conflict.error == "latte lm: cannot resume from " + ckpt + ": it was written with --G 1, this run has --G 2 "
                              "(leave --G out to keep the checkpoint's; only --steps and the output, progress and "
                              "device flags may change)");
}
