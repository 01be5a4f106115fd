// Checkpoints and resume: a run stopped and resumed (from a periodic checkpoint, the end of a
// shorter run, or a SIGTERM/SIGINT) is bit-identical to an uninterrupted one.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "experiments/checkpoint.h"
#include "experiments/teacher_student.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"

using namespace latte;
using namespace latte::experiments;

namespace {

void require_same_run(const TrainResult& a, const TrainResult& b) {
    REQUIRE(a.losses.size() == b.losses.size());
    REQUIRE(test::same_bytes(a.losses, b.losses));
    const auto pa = a.student->named_parameters(), pb = b.student->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
        INFO(pa[i].first);
        REQUIRE(test::same_bytes(pa[i].second, pb[i].second));
    }
    REQUIRE(a.eval_loss == b.eval_loss);
}

}  // namespace

TEST_CASE("20 steps straight equal 10 steps, a checkpoint and 10 resumed steps, to the bit", "[train][checkpoint]") {
    for (const char* model : {"mha", "gqa", "mla"}) {
        CAPTURE(model);
        const std::string straight_file = test::temp_path("straight.ckpt"), split_file = test::temp_path("split.ckpt");
        TrainConfig c = test::small_train_config(model);
        auto teacher = make_teacher(c.sizes, c.seed);

        TrainConfig straight = c;
        straight.checkpoint = straight_file;
        const TrainResult full = train_student(straight, teacher.get());

        TrainConfig first = c;
        first.steps = 10;
        first.checkpoint = split_file;
        train_student(first, teacher.get());
        REQUIRE(load_checkpoint(split_file).step == 10);
        TrainConfig second = c;
        second.resume = second.checkpoint = split_file;
        const TrainResult resumed = train_student(second, teacher.get());
        REQUIRE(resumed.start_step == 10);
        require_same_run(full, resumed);
        // Both runs end in the same state, so their final checkpoints are the same bytes.
        REQUIRE(test::file_bytes(straight_file) == test::file_bytes(split_file));
        std::remove(straight_file.c_str());
        std::remove(split_file.c_str());
    }
}

TEST_CASE("latte train --checkpoint-every writes the checkpoint every N steps, and any of them resumes exactly", "[train][checkpoint]") {
    const std::string file = test::temp_path("every.ckpt"), copy = test::temp_path("every_step10.ckpt");
    std::remove(file.c_str());  // a file left by an earlier, failed run would be read as this run's
    TrainConfig c = test::small_train_config();
    auto teacher = make_teacher(c.sizes, c.seed);
    TrainConfig periodic = c;
    periodic.checkpoint = file;
    periodic.checkpoint_every = 5;
    std::vector<int64_t> seen;  // the checkpoint's step as each step ends (before that step's own write)
    periodic.on_step = [&](int64_t done, double) {
        seen.push_back(std::filesystem::exists(file) ? load_checkpoint(file).step : -1);
        if (done == 11) std::filesystem::copy_file(file, copy, std::filesystem::copy_options::overwrite_existing);
    };
    const TrainResult full = train_student(periodic, teacher.get());
    REQUIRE(seen == std::vector<int64_t>{-1, -1, -1, -1, -1, 5, 5, 5, 5, 5, 10, 10, 10, 10, 10, 15, 15, 15, 15, 15});
    const TrainCheckpoint at10 = load_checkpoint(copy);
    REQUIRE(at10.step == 10);
    REQUIRE(at10.losses == std::vector<double>(full.losses.begin(), full.losses.begin() + 10));
    REQUIRE(at10.optimizer.metadata.at("step") == "10");

    TrainConfig resume = c;
    resume.resume = resume.checkpoint = copy;
    require_same_run(full, train_student(resume, teacher.get()));
    std::remove(file.c_str());
    std::remove(copy.c_str());
}

TEST_CASE("SIGTERM or SIGINT during training writes a checkpoint, stops, and the run resumes exactly", "[train][checkpoint]") {
    for (int signal : {SIGTERM, SIGINT}) {
        CAPTURE(signal);
        const std::string file = test::temp_path("signal.ckpt");
        std::remove(file.c_str());
        TrainConfig c = test::small_train_config("mla");
        auto teacher = make_teacher(c.sizes, c.seed);
        const TrainResult full = train_student(c, teacher.get());

        TrainConfig interrupted = c;
        interrupted.checkpoint = file;
        interrupted.on_step = [&](int64_t done, double) {
            if (done == 7) std::raise(signal);  // caught: training stops after this step
        };
        const std::string name = signal == SIGTERM ? "SIGTERM" : "SIGINT";
        try {
            train_student(interrupted, teacher.get());
            FAIL("training was not stopped");
        } catch (const TrainingStopped& stop) {
            REQUIRE(stop.signal == signal);
            REQUIRE(std::string(stop.what()) == "latte train: stopped by " + name + " after step 7 of 20; wrote the checkpoint " +
                                                    file + " (continue with --resume " + file + ")");
        }
        REQUIRE(load_checkpoint(file).step == 7);
        TrainConfig resume = c;
        resume.resume = resume.checkpoint = file;
        require_same_run(full, train_student(resume, teacher.get()));
        std::remove(file.c_str());
    }
}

TEST_CASE("latte train --resume continues a run to the same bytes as an uninterrupted one", "[train][checkpoint]") {
    const std::string dir = test::temp_path("resume_cli"), ckpt = dir + "/split.ckpt";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::vector<std::string> common{"--D", "16", "--H", "2", "--d", "8", "--batch", "4", "--L", "4", "--seed", "3"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), common.begin(), common.end());
        return extra;
    };
    REQUIRE(test::run_train(with({"--steps", "12", "--save", dir + "/a.safetensors", "--out", dir, "--name", "a"})) == 0);
    REQUIRE(test::run_train(with({"--steps", "5", "--checkpoint", ckpt, "--out", dir, "--name", "b"})) == 0);
    REQUIRE(test::run_train(with({"--steps", "12", "--resume", ckpt, "--save", dir + "/b.safetensors", "--out", dir,
                                  "--name", "b"})) == 0);
    REQUIRE(test::file_bytes(dir + "/a.safetensors") == test::file_bytes(dir + "/b.safetensors"));
    REQUIRE(test::file_bytes(dir + "/a/loss.csv") == test::file_bytes(dir + "/b/loss.csv"));
    REQUIRE(test::file_bytes(dir + "/a/checkpoint.safetensors") == test::file_bytes(ckpt));
    // The --save file holds the weights only, under the PyTorch names.
    const nn::SafetensorsFile saved = nn::load_safetensors(dir + "/a.safetensors");
    REQUIRE(saved.tensors.size() == 4);
    REQUIRE(saved.tensors[0].first == "W_Q.weight");

    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "12", "--lr", "0.01", "--resume", ckpt})),
                        "latte train: cannot resume from " + ckpt +
                            ": it was written with --lr 0.003, this run has --lr 0.01 (leave --lr out to keep the "
                            "checkpoint's; only --steps and the output, progress and device flags may change)");
    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "12", "--model", "gqa", "--resume", ckpt})),
                        "latte train: cannot resume from " + ckpt +
                            ": it was written with --model mha, this run has --model gqa (leave --model out to keep "
                            "the checkpoint's; only --steps and the output, progress and device flags may change)");
    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "10", "--resume", ckpt})),
                        "latte train: " + ckpt + " is at step 12, beyond --steps 10");
    const std::string weights = dir + "/a.safetensors";
    REQUIRE_THROWS_WITH(test::run_train(with({"--steps", "12", "--resume", weights, "--checkpoint", dir + "/c.ckpt"})),
                        "load_checkpoint: " + weights +
                            " is not a latte training checkpoint (a --save file holds only weights; --resume needs the "
                            "--checkpoint file)");
    std::filesystem::remove_all(dir);
}

TEST_CASE("a checkpoint with a changed config key or a wrong loss count is refused", "[train][checkpoint]") {
    REQUIRE_THROWS_WITH(check_resumable({{"batch", "4"}, {"data", ""}}, {{"batch", "8"}, {"data", ""}}, "f.ckpt"),
                        "latte train: cannot resume from f.ckpt: it was written with --batch 4, this run has --batch 8 "
                        "(leave --batch out to keep the checkpoint's; only --steps and the output, progress and device "
                        "flags may change)");
    REQUIRE_THROWS_WITH(check_resumable({{"data", ""}}, {{"data", "d.safetensors"}}, "f.ckpt"),
                        "latte train: cannot resume from f.ckpt: it was written with --data (none), this run has "
                        "--data d.safetensors (leave --data out to keep the checkpoint's; only --steps and the output, "
                        "progress and device flags may change)");
    // The run's length and reporting may change on resume: not compared.
    REQUIRE_NOTHROW(check_resumable({{"steps", "5"}, {"log-every", "1"}, {"checkpoint-every", "2"}},
                                    {{"steps", "9"}, {"log-every", "0"}, {"checkpoint-every", "0"}}, "f.ckpt"));
    TrainCheckpoint bad;
    bad.step = 3;
    bad.losses = {1.0, 2.0};
    REQUIRE_THROWS_WITH(save_checkpoint(test::temp_path("bad.ckpt"), bad), "save_checkpoint: 2 losses for 3 steps");
}

TEST_CASE("a checkpoint holding nan, inf or a negative exp_avg_sq is refused, naming the tensor and index",
          "[train][checkpoint]") {
    const std::string good = test::temp_path("finite_good.ckpt"), bad = test::temp_path("finite_bad.ckpt");
    TrainConfig c = test::small_train_config("mha");
    c.steps = 3;
    c.checkpoint = good;
    auto teacher = make_teacher(c.sizes, c.seed);
    train_student(c, teacher.get());
    const nn::SafetensorsFile file = nn::load_safetensors(good);
    // `good` with element `index` of tensor `name` set to `value`.
    auto write_with = [&](const std::string& name, int64_t index, double value) {
        std::vector<std::pair<std::string, Tensor>> tensors;
        for (const auto& [n, t] : file.tensors) {
            if (n != name) {
                tensors.emplace_back(n, t);
                continue;
            }
            std::vector<double> v = t.to_vector();
            v[static_cast<size_t>(index)] = value;
            tensors.emplace_back(n, from_vector(v, t.shape(), TensorOptions{}.with_dtype(t.dtype())));
        }
        nn::save_safetensors(bad, tensors, file.metadata);
    };
    TrainConfig resume = c;
    resume.steps = 5;
    resume.resume = bad;
    resume.checkpoint = test::temp_path("finite_out.ckpt");
    auto refused = [&](const std::string& message) {
        REQUIRE_THROWS_WITH(load_checkpoint(bad), message);
        REQUIRE_THROWS_WITH(train_student(resume, teacher.get()), message);
    };
    write_with("model.W_Q.weight", 17, std::nan(""));
    refused("load_checkpoint: " + bad + ": tensor 'model.W_Q.weight' holds nan at index [1, 1]");
    write_with("optimizer.exp_avg.1", 3, INFINITY);
    refused("load_checkpoint: " + bad + ": tensor 'optimizer.exp_avg.1' holds inf at index [0, 3]");
    write_with("optimizer.exp_avg_sq.2", 0, -INFINITY);
    refused("load_checkpoint: " + bad + ": tensor 'optimizer.exp_avg_sq.2' holds -inf at index [0, 0]");
    write_with("losses", 1, std::nan(""));
    refused("load_checkpoint: " + bad + ": tensor 'losses' holds nan at index [1]");
    // Finite but negative: the optimizer refuses it.
    write_with("optimizer.exp_avg_sq.0", 16, -1e-6);
    REQUIRE_NOTHROW(load_checkpoint(bad));
    REQUIRE_THROWS_WITH(train_student(resume, teacher.get()),
                        "adam load_state_dict: tensor 'exp_avg_sq.0' holds -1e-06 at index [1, 0] (exp_avg_sq must be "
                        "non-negative)");
    // load_parameters checks an in-memory checkpoint too.
    TrainCheckpoint in_memory = load_checkpoint(good);
    Generator gen(1);
    auto student = make_student("mha", c.sizes, gen);
    in_memory.model[2].second = full(in_memory.model[2].second.shape(), INFINITY);
    REQUIRE_THROWS_WITH(load_parameters(*student, in_memory, "mem"),
                        "latte train: checkpoint mem: tensor 'model." + in_memory.model[2].first +
                            "' holds inf at index [0, 0]");
    REQUIRE_FALSE(std::filesystem::exists(resume.checkpoint));
    for (const std::string& f : {good, bad}) std::remove(f.c_str());
}
