#include "experiments/teacher_student.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <optional>

#include "core/autograd.h"
#include "core/distributed.h"
#include "experiments/checkpoint.h"
#include "experiments/finite_checks.h"
#include "experiments/progress.h"
#include "experiments/rank_agreement.h"
#include "experiments/stop_signal.h"
#include "experiments/train_data.h"
#include "nn/data_parallel.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/optim.h"
#include "nn/serialize.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::experiments {

std::shared_ptr<nn::Attention> make_student(const std::string& kind, const ModelSizes& s, Generator& gen) {
    if (kind == "mha") return std::make_shared<nn::MultiHeadAttention>(s.D, s.D, s.d, s.d, s.H, gen);
    if (kind == "gqa") return std::make_shared<nn::GroupedQueryAttention>(s.D, s.D, s.d, s.d, s.H, s.G, gen);
    if (kind == "mla") return std::make_shared<nn::MultiHeadLatentAttention>(s.D, s.H, s.d, s.r, gen);
    LATTE_FAIL("unknown model '", kind, "' (expected mha, gqa or mla)");
}

std::shared_ptr<nn::Attention> make_teacher(const ModelSizes& s, uint64_t seed, Device device) {
    Generator gen(seed ^ 0x7eac4e7ull);
    auto teacher = std::make_shared<nn::MultiHeadAttention>(s.D, s.D, s.d, s.d, s.H, gen);
    // PyTorch's init gives outputs ~ 1/sqrt(3) smaller per layer; scale so the attention pattern is
    // not uniform and the targets are of order one.
    NoGradGuard no_grad;
    for (const Tensor& p : teacher->parameters()) copy_(p, mul(p, 2.0));
    teacher->to(device);
    return teacher;
}

std::map<std::string, std::string> run_config(const TrainConfig& c) {
    const std::string L = c.L1 == c.L2 ? std::to_string(c.L1) : std::to_string(c.L1) + "," + std::to_string(c.L2);
    return {{"model", c.model},
            {"D", std::to_string(c.sizes.D)},
            {"H", std::to_string(c.sizes.H)},
            {"d", std::to_string(c.sizes.d)},
            {"G", std::to_string(c.sizes.G)},
            {"r", std::to_string(c.sizes.r)},
            {"batch", std::to_string(c.batch)},
            {"L", L},
            {"lr", nn::state_text::from_double(c.lr)},
            {"seed", std::to_string(c.seed)},
            {"init", c.init},
            {"data", c.data},
            {"steps", std::to_string(c.steps)},
            {"checkpoint-every", std::to_string(c.checkpoint_every)},
            {"log-every", std::to_string(c.log_every)},
            {"precision", autocast::precision_name(c.precision)}};
}

namespace {

const char* signal_name(int signal) { return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal"; }

// The student's output with its products in `precision` (--precision); the teacher's stay float32,
// so every precision learns the same targets.
Tensor student_output(const nn::Attention& student, const Tensor& x, const Tensor& y, autocast::Precision precision) {
    const autocast::Guard guard(precision);
    return student.forward(x, y);
}

// MSE and mean(target^2) over the whole data file, in chunks of `chunk` rows.
void evaluate_on_data(const nn::Attention& student, const TrainingData& data, int64_t chunk, DType dtype,
                      Device device, autocast::Precision precision, TrainResult& result) {
    double squared_error = 0, power = 0;
    for (int64_t first = 0; first < data.size(); first += chunk) {
        const int64_t rows = std::min(chunk, data.size() - first);
        Tensor x = to(to(narrow(data.x, 0, first, rows), dtype), device);
        Tensor y = to(to(narrow(data.y, 0, first, rows), dtype), device);
        Tensor target = to(to(narrow(data.target, 0, first, rows), dtype), device);
        const auto n = static_cast<double>(target.numel());
        squared_error += mse_loss(student_output(student, x, y, precision), target).item() * n;
        power += mean(mul(target, target)).item() * n;
    }
    const auto total = static_cast<double>(data.target.numel());
    result.eval_loss = squared_error / total;
    result.target_power = power / total;
}

}  // namespace

TrainResult train_teacher_student(const TrainConfig& c, const nn::Attention& teacher) {
    return train_student(c, &teacher);
}

TrainResult train_student(const TrainConfig& c, const nn::Attention* teacher) {
    LATTE_CHECK(c.steps > 0 && c.batch > 0 && c.L1 > 0 && c.L2 > 0, "train: steps, batch and lengths must be positive");
    LATTE_CHECK(c.checkpoint_every >= 0, "train: checkpoint_every must be non-negative, got ", c.checkpoint_every);
    // Under mpirun: data-parallel, each rank on its shard of every batch; rank 0 writes the files.
    const int ranks = distributed::world_size();
    const bool parallel = distributed::is_initialized() && ranks > 1;
    const bool writer = distributed::rank() == 0;
    LATTE_CHECK(!parallel || c.batch % ranks == 0, "latte train: --batch ", c.batch, " does not split evenly over ",
                ranks, " ranks");
    TrainConfig run = c;  // with the lengths of the data file when there is one
    std::optional<TrainingData> data;
    if (!c.data.empty()) {
        data = load_training_data(c.data, c.sizes.D, c.sizes.D, c.batch);
        run.L1 = data->x.size(1);
        run.L2 = data->y.size(1);
    } else {
        LATTE_CHECK(teacher, "train: needs a teacher or a data file");
    }
    // The data file's size and content hash, stored in every checkpoint: a resumed run must train
    // on the very file its run began with, or it would not continue that run.
    const std::string data_digest = c.data.empty() ? "" : file_digest(c.data, c.who + ": --data");
    auto config_to_store = [&] {
        std::map<std::string, std::string> config = run_config(run);
        if (!data_digest.empty()) config["data-digest"] = data_digest;
        return config;
    };
    Generator init(c.seed), data_gen(c.seed + 1000003);
    TrainResult result;
    result.student = make_student(c.model, c.sizes, init);
    nn::Attention& student = *result.student;
    // A resumed run's weights come from the checkpoint: the --init file (which may be gone or
    // changed since) plays no part and is not read.
    if (!c.init.empty() && c.resume.empty()) nn::load(student, c.init);
    student.to(c.device);
    if (teacher)
        LATTE_CHECK(teacher->device() == c.device, "train: the teacher is on ", teacher->device().str(),
                    ", the student trains on ", c.device.str());
    result.parameters = student.num_parameters();
    result.kv_cache_per_position = student.kv_cache_per_position();
    nn::Adam optimizer(student.parameters(), c.lr);
    std::optional<nn::DistributedDataParallel> ddp;

    std::string last_checkpoint;  // "<path> (step k)": what the divergence message points to
    auto after = [&] {
        // The learning rate is not the only suspect: the weights a fresh run started from are too.
        std::string causes;
        if (!c.init.empty() && c.resume.empty())
            causes = result.losses.empty()
                         ? "No update had been made yet: the --init weights " + c.init + " are the cause, not the "
                           "learning rate (their values are so large that the forward pass overflows). "
                         : "Besides the learning rate, the --init weights " + c.init + " may be the cause (values "
                           "so large that the forward pass overflows). ";
        return causes + (last_checkpoint.empty() ? std::string("No checkpoint was written.")
                                                 : "The last good checkpoint is " + last_checkpoint + ".");
    };
    if (!c.resume.empty()) {
        const TrainCheckpoint saved = load_checkpoint(c.resume);
        std::map<std::string, std::string> saved_config = saved.run_config;
        const auto stored_digest = saved_config.find("data-digest");
        if (!c.data.empty() && stored_digest == saved_config.end()) {
            // Written before checkpoints held the digest: the file cannot be checked, only noted.
            if (writer)
                std::fprintf(stderr, "%s: note: %s predates data digests, so --data '%s' cannot be checked against "
                             "the file the run began with (it now has %s)\n", c.who.c_str(), c.resume.c_str(),
                             c.data.c_str(), data_digest.c_str());
        } else if (!c.data.empty()) {
            LATTE_CHECK(stored_digest->second == data_digest, c.who, ": cannot resume from ", c.resume, ": its --data '",
                        c.data, "' has changed since the run began (the checkpoint has ", stored_digest->second,
                        ", the file now has ", data_digest, "); a resumed run must train on the same data");
        }
        saved_config.erase("data-digest");  // not a flag: compared above
        check_resumable(saved_config, run_config(run), c.resume);
        LATTE_CHECK(saved.step <= c.steps, "latte train: ", c.resume, " is at step ", saved.step, ", beyond --steps ",
                    c.steps);
        // The state must be this run's own: the optimizer's lr and step counts, and the model's settings.
        check_module_config(saved.module_config, student.config(), "latte train", c.resume);
        check_resumable_optimizer(saved, optimizer, /*every_parameter_steps=*/true, "latte train", c.resume);
        load_parameters(student, saved, c.resume);
        optimizer.load_state_dict(saved.optimizer);
        data_gen.set_state(saved.data_generator);
        result.losses = saved.losses;
        result.start_step = saved.step;
        last_checkpoint = c.resume + " (step " + std::to_string(saved.step) + ")";
    }
    int64_t written = -1;  // the step of this run's last checkpoint
    const DType dtype = student.parameters().front().dtype();
    // The loss of the weights on one batch that training does not draw from (the held-out set's
    // first rows, or the --data file's first batch): finite weights can still overflow the forward.
    auto probe_loss = [&] {
        NoGradGuard no_grad;
        if (data) {
            const Batch b = data_batch(*data, 0, c.batch, dtype, c.device);
            return mse_loss(student_output(student, b.x, b.y, c.precision), b.target).item();
        }
        Generator held_out(c.seed + 7777777);
        const TensorOptions on_device = TensorOptions{}.with_device(c.device);
        Tensor x = randn({c.batch, run.L1, c.sizes.D}, held_out, on_device);
        Tensor y = randn({c.batch, run.L2, c.sizes.D}, held_out, on_device);
        return mse_loss(student_output(student, x, y, c.precision), (*teacher)(x, y)).item();
    };
    // Checked on every rank before anything is written: finite weights and optimizer state, and
    // (unless the evaluation has just shown it) a finite loss, so a diverged state never replaces
    // the last good checkpoint.
    auto write_checkpoint = [&](int64_t steps_done, bool probe) {
        check_finite_parameters(c.who, student, steps_done, optimizer.lr(), after());
        if (probe)
            check_finite_figure(c.who, data ? "the loss on the --data file's first batch" : "the loss on a held-out batch",
                                probe_loss(), steps_done, optimizer.lr(), after());
        nn::OptimizerState state = optimizer.state_dict();
        check_optimizer_state(c.who, state, steps_done, optimizer.lr(), after());
        if (writer) {
            save_checkpoint(c.checkpoint, {steps_done, result.losses, student.named_parameters(), student.config(),
                                           std::move(state), data_gen.state(), config_to_store()});
            if (c.progress) {
                std::printf("  checkpoint at step %lld: %s\n", static_cast<long long>(steps_done), c.checkpoint.c_str());
                std::fflush(stdout);
            }
        }
        written = steps_done;
        last_checkpoint = c.checkpoint + " (step " + std::to_string(steps_done) + ")";
    };
    if (parallel) ddp.emplace(student);  // checks every rank built the same student
    if (c.on_ready) c.on_ready();
    std::optional<StopSignalGuard> signals;
    if (!c.checkpoint.empty()) signals.emplace();
    std::optional<DetectAnomalyGuard> anomaly;  // on for this run; a mode already on is left on
    if (c.detect_anomaly) anomaly.emplace(true);

    const auto start = std::chrono::steady_clock::now();
    Progress progress(result.start_step, c.steps, c.log_every, c.progress_seconds);
    const std::string label = c.progress_label.empty() ? c.model : c.progress_label;
    for (int64_t step = result.start_step; step < c.steps; ++step) {
        Batch b = data ? data_batch(*data, step, c.batch, dtype, c.device)
                       : teacher_batch(*teacher, data_gen, c.batch, run.L1, run.L2, c.sizes.D, c.device, parallel);
        if (data && parallel) b = {nn::shard_batch(b.x), nn::shard_batch(b.y), nn::shard_batch(b.target)};
        // The backward products take the forward's precision (the nodes keep it).
        Tensor loss = mse_loss(student_output(student, b.x, b.y, c.precision), b.target);
        double value = loss.item();
        int agreed_signal = 0;
        if (parallel) {  // the whole batch's loss, and whether any rank was signalled: all ranks act alike
            std::vector<double> numbers{value};
            agreed_signal = sum_over_ranks_and_agree_on_stop(numbers, signals ? stop_requested() : 0);
            value = numbers[0] / ranks;
        }
        check_finite_loss(c.who, value, step + 1, optimizer.lr(), after());
        optimizer.zero_grad();
        try {
            loss.backward();
        } catch (const Error& e) {  // e.g. anomaly mode naming the op: say which step
            LATTE_FAIL(c.who, ": step ", step + 1, ": ", e.what());
        }
        check_finite_gradients(c.who, student, step + 1, optimizer.lr(), after());
        optimizer.step();
        result.losses.push_back(value);
        if (const Progress::Tick tick = progress.after(step + 1); c.progress && writer && tick.print) {
            std::printf("  %s step %5lld/%lld  loss %.3e  %6.1f steps/s  ETA %5.1fs\n", label.c_str(),
                        static_cast<long long>(step + 1), static_cast<long long>(c.steps), value,
                        tick.steps_per_second, tick.eta_seconds);
            std::fflush(stdout);
        }
        if (c.on_step) c.on_step(step + 1, value);
        const int signal = parallel ? agreed_signal : signals ? stop_requested() : 0;
        if (!c.checkpoint.empty() && (signal || (c.checkpoint_every > 0 && (step + 1) % c.checkpoint_every == 0)))
            write_checkpoint(step + 1, /*probe=*/true);
        if (signal)
            throw TrainingStopped(detail::concat("latte train: stopped by ", signal_name(signal), " after step ",
                                                 step + 1, " of ", c.steps, "; wrote the checkpoint ", c.checkpoint,
                                                 " (continue with --resume ", c.checkpoint, ")"),
                                  signal);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // The evaluation runs before the final checkpoint: weights that give a non-finite loss (finite,
    // but so large that the forward overflows) are not saved, and the run fails naming the figure.
    {
        NoGradGuard no_grad;
        const TensorOptions on_device = TensorOptions{}.with_device(c.device);
        if (data) {
            result.eval_set = "data";
            evaluate_on_data(student, *data, 4 * c.batch, dtype, c.device, c.precision, result);
        } else {
            Generator held_out(c.seed + 7777777);
            Tensor x = randn({4 * c.batch, run.L1, c.sizes.D}, held_out, on_device);
            Tensor y = randn({4 * c.batch, run.L2, c.sizes.D}, held_out, on_device);
            Tensor target = (*teacher)(x, y);
            result.eval_loss = mse_loss(student_output(student, x, y, c.precision), target).item();
            result.target_power = mean(mul(target, target)).item();
        }
    }
    const std::string eval_name = data ? "the loss on the --data file" : "the held-out loss";
    check_finite_figure(c.who, eval_name, result.eval_loss, c.steps, optimizer.lr(), after());
    check_finite_figure(c.who, data ? "the --data file's target power mean(target^2)" : "the held-out target power",
                        result.target_power, c.steps, optimizer.lr(), after());
    if (!c.checkpoint.empty() && written != c.steps) write_checkpoint(c.steps, /*probe=*/false);
    signals.reset();
    return result;
}

}  // namespace latte::experiments
