// Teacher-student regression on synthetic data: a fixed random MHA teacher maps random (x, y)
// to targets; a student (MHA, GQA or MLA) learns them with Adam and an MSE loss.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/autocast.h"
#include "nn/attention.h"

namespace latte::experiments {

struct ModelSizes {
    int64_t D = 64, H = 4, d = 16, G = 2, r = 32;  // width, heads, head dim, kv heads (GQA), rank (MLA)
};

struct TrainConfig {
    std::string model = "mha";  // student: mha, gqa or mla
    ModelSizes sizes;
    int64_t batch = 8, L1 = 16, L2 = 16;
    int64_t steps = 200;
    double lr = 3e-3;
    uint64_t seed = 0;
    Device device = Device::cpu();  // where the student trains (the teacher must be there too)
    std::string who = "latte train";  // the command, as its errors start ("latte demo", "latte compare")
    bool progress = true;  // progress lines (experiments/progress.h) and checkpoint announcements
    int64_t log_every = 250;          // a progress line every N steps (0: by time alone)
    double progress_seconds = 10;     // and at least this often
    std::string progress_label;       // what the lines start with (default: the model)

    // Files; empty for none. init: starting weights (a file nn::save wrote); data: x, y, target
    // batches in order instead of the teacher's; checkpoint: where the training checkpoint goes
    // (written at the end, every checkpoint_every steps and on SIGINT/SIGTERM, which are caught
    // while training); resume: a checkpoint to continue from (same config; steps may grow). A
    // resumed run takes its weights from the checkpoint and does not read init; the checkpoint
    // holds the data file's digest, and a data file whose contents changed is refused.
    std::string init, data, checkpoint, resume;
    int64_t checkpoint_every = 0;
    bool detect_anomaly = false;  // name the op whose backward made a non-finite gradient
    // The student's matrix products, in training and evaluation (the teacher's stay float32).
    autocast::Precision precision = autocast::Precision::Float32;
    std::function<void(int64_t steps_done, double loss)> on_step;  // after every step
    // Called once every input (init, data, resume) is read and checked, before the first step: a
    // command prints its banner here, so a bad input fails before any output.
    std::function<void()> on_ready;
};

// SIGINT or SIGTERM stopped training; the checkpoint was written first.
class TrainingStopped : public Error {
public:
    TrainingStopped(const std::string& message, int signal) : Error(message), signal(signal) {}
    int signal;
};

// The run's flags, stored in its checkpoint (flag name -> value): model, D, H, d, G, r, batch, L,
// lr, seed, init, data, which a resumed run must share, and steps, checkpoint-every and log-every,
// which it may change (experiments/resume_flags.h). A run on a data file also stores data-digest,
// the file's size and content hash (file_digest), which a resumed run's file must match.
std::map<std::string, std::string> run_config(const TrainConfig& config);

struct TrainResult {
    std::vector<double> losses;  // training loss per step
    double eval_loss = 0;        // MSE on a held-out batch after training
    double target_power = 0;     // mean(target^2) on that batch: eval_loss / target_power is the unexplained fraction
    std::string eval_set = "held-out";  // or "data": the whole --data file
    double seconds = 0;
    int64_t start_step = 0;  // steps done before this run (from --resume)
    int64_t parameters = 0;
    int64_t kv_cache_per_position = 0;
    std::shared_ptr<nn::Attention> student;
};

// A student of the given kind with the config's sizes ("mha" | "gqa" | "mla").
std::shared_ptr<nn::Attention> make_student(const std::string& kind, const ModelSizes& sizes, Generator& gen);
// The config's teacher: an MHA with the same D, H, d, weights scaled so targets have unit-order
// size, on `device`.
std::shared_ptr<nn::Attention> make_teacher(const ModelSizes& sizes, uint64_t seed, Device device = Device::cpu());
// Weights and data are drawn on the host, so a seed gives the same run on every device.
// A non-finite loss, gradient or weight, or a non-finite evaluation (eval_loss, target_power),
// throws latte::Error naming config.who, the step and the tensor or figure; nothing is saved from
// that state (the evaluation runs before the final checkpoint is written). A caught signal throws
// TrainingStopped after writing the checkpoint.
TrainResult train_teacher_student(const TrainConfig& config, const nn::Attention& teacher);
// The same with `teacher` null when config.data names the training data.
TrainResult train_student(const TrainConfig& config, const nn::Attention* teacher);

}  // namespace latte::experiments
