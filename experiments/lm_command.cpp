// `latte lm`: a small decoder LM (nn::DecoderLM) trained on a synthetic token task
// (experiments/lm_tasks.h) with AdamW and the usual decay / no-decay parameter groups.
#include <algorithm>
#include <chrono>
#include <limits>
#include <csignal>
#include <optional>
#include <set>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/autograd.h"
#include "core/distributed.h"
#include "core/parse.h"
#include "experiments/checkpoint.h"
#include "experiments/cli.h"
#include "experiments/commands.h"
#include "experiments/finite_checks.h"
#include "experiments/lm_history.h"
#include "experiments/lm_summary.h"
#include "experiments/lm_tasks.h"
#include "experiments/memory.h"
#include "experiments/plot.h"
#include "experiments/progress.h"
#include "experiments/rank_agreement.h"
#include "experiments/resume_flags.h"
#include "experiments/run_folder.h"
#include "experiments/stop_signal.h"
#include "nn/data_parallel.h"
#include "nn/param_groups.h"
#include "nn/serialize.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

// A rough upper bound, in bytes (float32), of training: the weights with their gradients, Adam's
// two moments and a temporary (5 copies), each layer's activations and their gradients, the
// logits with their softmax and gradient, and the loss and accuracy histories.
double lm_training_bytes(const nn::DecoderLMConfig& c, int64_t batch, int64_t L, int64_t steps) {
    const double D = double(c.width), V = double(c.vocab), r = double(c.rank), dR = double(c.rope_dim),
                 H = double(c.heads), hidden = 4 * D, B = double(batch), T = double(L);
    // With query compression: W_DQ (q_rank, D), and W_Q, W_QR reading q_rank inputs (counted on top).
    const double attn = 4 * D * D + 3 * D * r + D * dR * (H + 1) + double(c.q_rank) * (2 * D + H * dR);
    const double params = 2 * V * D + double(c.layers) * (attn + 3 * D * hidden + 2 * D) + D;
    AttentionSizes a{B, T, T, D, H, D, r};
    const double per_layer = attention_activation_elements(a, 4) + B * T * (3 * hidden + 8 * D);
    const double activations = 2 * (double(c.layers) * per_layer + 3 * B * T * V);
    return 4 * (5 * params + activations) + 16 * double(steps);
}

// A linear-scale line chart of values in [0, 1] (plot::write_svg's axis is logarithmic).
void write_accuracy_svg(const std::string& path, const std::string& title, const std::vector<double>& values) {
    const double width = 640, height = 400, left = 60, right = 20, top = 40, bottom = 50;
    const size_t n = std::max<size_t>(values.size(), 1);
    auto x_of = [&](size_t i) { return left + (width - left - right) * double(i) / double(std::max<size_t>(n - 1, 1)); };
    auto y_of = [&](double v) { return top + (height - top - bottom) * (1 - std::clamp(v, 0.0, 1.0)); };
    std::ostringstream out;
    out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
        << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n"
        << "<text x='" << width / 2 << "' y='20' text-anchor='middle' font-size='14'>" << title << "</text>\n";
    for (double v : {0.0, 0.25, 0.5, 0.75, 1.0})
        out << "<line x1='" << left << "' x2='" << width - right << "' y1='" << y_of(v) << "' y2='" << y_of(v)
            << "' stroke='#ddd'/>\n<text x='" << left - 6 << "' y='" << y_of(v) + 4 << "' text-anchor='end'>" << v
            << "</text>\n";
    out << "<text x='" << (left + width - right) / 2 << "' y='" << height - 12 << "' text-anchor='middle'>step (0 to "
        << n - 1 << ")</text>\n<text x='16' y='" << height / 2 << "' transform='rotate(-90 16 " << height / 2
        << ")' text-anchor='middle'>answer accuracy (train batch)</text>\n<polyline fill='none' stroke='#1f77b4' points='";
    for (size_t i = 0; i < values.size(); ++i) out << x_of(i) << "," << y_of(values[i]) << " ";
    out << "'/>\n</svg>\n";
    write_file_atomically(path, out.str(), "plot");
}

struct Evaluation {
    double loss = 0;
    LMAccuracy accuracy;
};

// The held-out set: `batches` batches from a generator of its own seed, the same at every call.
Evaluation evaluate(const nn::DecoderLM& model, const LMTaskSpec& spec, uint64_t seed, int64_t batches) {
    NoGradGuard no_grad;
    Generator gen(seed);
    Evaluation e;
    for (int64_t i = 0; i < batches; ++i) {
        const LMBatch b = make_lm_batch(spec, gen);
        const Tensor logits = model.forward(b.ids);
        e.loss += cross_entropy(logits, b.targets).item() / double(batches);
        const LMAccuracy a = lm_accuracy(logits, b.targets);
        e.accuracy.correct += a.correct;
        e.accuracy.total += a.total;
    }
    return e;
}

std::string tokens_text(const std::vector<int64_t>& v, size_t from, size_t count) {
    std::string s;
    for (size_t i = from; i < from + count; ++i) {
        if (i > from) s += ' ';
        s += std::to_string(v[i]);
    }
    return s;
}

// "%.4f" of a number, as the final line prints losses.
std::string fixed4(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4f", v);
    return text;
}

const char* signal_text(int signal) { return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal"; }

// The model the flags describe (without --load), each flag checked; flags another attention kind
// would ignore are refused.
nn::DecoderLMConfig config_from_flags(const cli::Args& args, const std::string& attention, const std::string& who) {
    nn::DecoderLMConfig c;
    c.attention = nn::parse_attention_kind(attention);
    c.layers = args.integer("layers", 1, 1024);
    c.width = args.integer("D", 1);
    c.heads = args.integer("H", 1);
    LATTE_CHECK(c.width % c.heads == 0, who, ": --D ", c.width, " is not a multiple of --H ", c.heads);
    if (attention != "gqa") args.refuse("G", "with --attention " + attention + " (only gqa has K/V head groups)");
    if (attention != "mla" && attention != "mla_rope")
        args.refuse("r", "with --attention " + attention + " (only mla and mla_rope have a latent rank)");
    if (attention != "mla_rope")
        args.refuse("d_R", "with --attention " + attention + " (only mla_rope has a decoupled RoPE dim)");
    if (attention == "gqa") {
        c.kv_heads = args.integer("G", 1);
        LATTE_CHECK(c.heads % c.kv_heads == 0, who, ": --H ", c.heads, " is not a multiple of --G ", c.kv_heads,
                    " (GQA shares each K/V head among H/G query heads)");
    }
    if (attention == "mla" || attention == "mla_rope") c.rank = args.integer("r", 1);
    if (attention == "mla_rope") {
        c.rope_dim = args.integer("d_R", 2);
        LATTE_CHECK(c.rope_dim % 2 == 0, who, ": --d_R must be even, got ", c.rope_dim);
    }
    const std::string rope = args.str("rope");
    LATTE_CHECK(rope == "on" || rope == "off", who, ": --rope must be on or off, got '", rope, "'");
    if (attention == "mla" || attention == "mla_rope")
        args.refuse("rope", "with --attention " + attention +
                                " (mla has no RoPE on q and k; mla_rope's decoupled RoPE is always on)");
    c.rope = rope == "on";
    const bool latent = attention == "mla" || attention == "mla_rope";
    const std::string norm = args.str("latent-norm");
    LATTE_CHECK(norm == "on" || norm == "off", who, ": --latent-norm must be on or off, got '", norm, "'");
    if (!latent) {
        args.refuse("latent-norm", "with --attention " + attention + " (only mla and mla_rope have a latent)");
        args.refuse("q-rank", "with --attention " + attention + " (only mla and mla_rope compress their queries)");
    }
    c.latent_norm = latent && norm == "on";
    c.q_rank = latent ? args.integer("q-rank", 0, int64_t{1} << 24) : 0;
    c.rope_pairing = parse_rope_pairing(args.str("rope-pairing"), who + ": --rope-pairing");
    if (attention == "mla" || !c.rope)
        args.refuse("rope-pairing", "without RoPE (--attention " + attention + (attention == "mla" ? "" : " --rope off") + ")");
    c.vocab = args.integer("vocab", 2);
    return c;
}

// The learning-rate schedule of a run over steps k = 1..steps: a linear warm-up (lr k / warmup, so
// step `warmup` is the first at lr), then lr held (constant) or nn::WarmupCosine's decay, which
// reaches min_ratio * lr at step `steps` and stays there after it.
struct Schedule {
    double lr = 0, min_ratio = 0.1;
    int64_t warmup = 0, steps = 0;
    bool cosine = false;
    // The rate of step k (1-based); 0 gives the base rate (no step taken yet).
    double at(int64_t k) const {
        if (k <= 0) return lr;
        if (k <= warmup) return lr * double(k) / double(warmup);
        return cosine ? nn::WarmupCosine(lr, warmup, steps, min_ratio * lr).lr_at(k) : lr;
    }
};

}  // namespace

int cmd_lm(int argc, char** argv, int first) {
    std::vector<cli::Flag> flags{
        {"task", "recall", "recall, copy, modadd or mqar (experiments/lm_tasks.h)"},
        {"pairs", "8", "mqar: key-value pairs per sequence (N)"},
        {"queries", "0", "mqar: keys queried after them (Q, 1..N; 0: N)"},
        {"attention", "mha", "mha, gqa, mla or mla_rope"},
        {"layers", "2", "transformer blocks"},
        {"D", "128", "model width"},
        {"H", "4", "query heads (head dim D/H)"},
        {"G", "2", "K/V heads of gqa"},
        {"r", "32", "latent rank of mla and mla_rope"},
        {"d_R", "8", "decoupled RoPE dim of mla_rope (even)"},
        {"rope", "on", "RoPE on q and k of mha and gqa: on or off (off: no positional encoding; a gqa model then "
                       "converts exactly to MLA with latte convert)"},
        {"latent-norm", "on", "mla and mla_rope: RMSNorm on the latent c_KV, as DeepSeek-V2 (off: the spec's MLA)"},
        {"q-rank", "0", "mla and mla_rope: compress the queries to this rank, with an RMSNorm (0: no compression)"},
        {"rope-pairing", "rotate_half", "RoPE feature pairs: rotate_half (i, i + d/2; Llama, Hugging Face) or "
                                        "interleaved (2i, 2i+1; GPT-J, DeepSeek's reference model)"},
        {"vocab", "32", "vocabulary size"},
        {"L", "0", "sequence length (0: the task's default: 17 for recall and copy, 4 for modadd, 2(N + Q) for mqar)"},
        {"batch", "32", "sequences per step"},
        {"steps", "1000", "training steps (0 with --load: only evaluate the loaded model)"},
        {"lr", "0.001", "AdamW peak learning rate"},
        {"weight-decay", "0.1", "AdamW weight decay of matrices (none on norms and embeddings)"},
        {"beta2", "0.95", "AdamW beta2 (beta1 is 0.9)"},
        {"warmup", "auto", "linear warm-up steps (auto: 10% of --steps, at most 100)"},
        {"schedule", "constant", "after the warm-up: constant, or cosine (decay to --min-lr-ratio x --lr at the last step)"},
        {"min-lr-ratio", "0.1", "the cosine schedule's final rate, as a fraction of --lr"},
        {"clip", "1.0", "clip the gradients' global norm to this (0: no clipping)"},
        {"seed", "0", "random seed (weights, training batches and the held-out set)"},
        {"eval-every", "200", "print progress with held-out accuracy every N steps (0: only at the end)"},
        {"log-every", "0", "a progress line (train loss and accuracy, no held-out set) every N steps (0: only the one "
                           "every ~10 s)"},
        {"eval-batches", "4", "held-out batches (of --batch sequences) for held-out loss and accuracy"},
        {"generate", "0", "print N greedy continuations of held-out prompts, decoded with the KV/latent cache"},
        cli::folder_flag("out", "runs", "parent folder of the run folders, OUT/NAME/{loss.csv, loss.svg, accuracy.svg, "
                                        "eval.csv, summary.json} (created as needed)"),
        cli::file_flag("load", "start from this DecoderLM .safetensors (latte lm --save, latte convert); its "
                               "metadata gives the model, so the model flags are refused"),
        cli::file_flag("save", "write the trained model (weights only) to this .safetensors file"),
        cli::file_flag("checkpoint", "training checkpoint file (default: the --resume file, else OUT/NAME/checkpoint.safetensors)"),
        {"checkpoint-every", "0", "also write the checkpoint every N steps (it is always written at the end and on SIGINT/SIGTERM)"},
        cli::file_flag("resume", "continue the run saved in this checkpoint, with its flags and in its folder (--steps "
                                 "may grow)"),
        cli::precision_flag(),
        cli::timeout_flag()};
    for (const cli::Flag& f : run_folder_flags("lm_TASK_ATTENTION and each flag given, e.g. lm_recall_mla_steps200"))
        flags.push_back(f);
    cli::Args args("lm", "A small decoder LM trained on a synthetic token task (answer positions only):\n"
                         "associative recall, copy (induction), modular addition or multi-query recall.\n"
                         "Files go to OUT/NAME/.",
                   flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    // Every flag and output path is checked before the first line of output.
    cli::group_timeout("lm", argc, argv, first);  // checked alone too, for a run that is not under mpirun
    const std::string who = "latte lm";
    if (args.given("load")) args.refuse("resume", "with --load (a checkpoint holds its own weights)");
    if (args.given("resume")) {
        // The flags not given are the checkpoint's; a key the checkpoint lacks (it predates the flag) is the
        // behaviour of its time. --warmup auto, --queries 0 and --L 0 are compared once resolved.
        std::map<std::string, std::string> stored = load_checkpoint_flags(args.str("resume"), "lm");
        const auto attention = stored.find("attention");
        for (const auto& [key, value] : flags_before_they_existed(attention == stored.end() ? "" : attention->second))
            stored.emplace(key, value);
        adopt_stored_flags(args, args.str("resume"), stored, {"warmup", "queries", "L"});
    }
    LMTaskSpec spec;
    spec.task = parse_lm_task(args.str("task"), who);
    const std::string load = args.str("load");
    nn::DecoderLMConfig c;
    if (!load.empty()) {  // the file gives the model: the model's flags would be ignored
        for (const char* flag :
             {"attention", "layers", "D", "H", "G", "r", "d_R", "vocab", "rope", "latent-norm", "q-rank", "rope-pairing"})
            args.refuse(flag, "with --load (the file gives the model and its sizes)");
        c = nn::decoder_lm_file_config(load);
    }
    const std::string attention = load.empty() ? args.str("attention") : nn::attention_kind_name(c.attention);
    LATTE_CHECK(attention == "mha" || attention == "gqa" || attention == "mla" || attention == "mla_rope", who,
                ": --attention must be mha, gqa, mla or mla_rope, got '", attention, "'");
    if (load.empty()) c = config_from_flags(args, attention, who);
    // Whether the model has rotary dims (DecoderLM's rule: mla never, mla_rope always).
    const bool has_rope = c.attention == nn::AttentionKind::MLARoPE || (c.attention != nn::AttentionKind::MLA && c.rope);
    spec.vocab = c.vocab;
    if (spec.task == LMTask::MQAR) {
        spec.pairs = args.integer("pairs", 1, int64_t{1} << 20);
        spec.queries = args.integer("queries", 0, spec.pairs);
        if (spec.queries == 0) spec.queries = spec.pairs;
    } else {
        args.refuse("pairs", "with --task " + lm_task_name(spec.task) + " (only mqar has key-value pairs to set)");
        args.refuse("queries", "with --task " + lm_task_name(spec.task) + " (only mqar has several queries)");
        spec.pairs = spec.queries = 0;
    }
    spec.length = args.integer("L", 0);
    if (spec.length == 0) spec.length = lm_default_length(spec);
    spec.batch = args.integer("batch", 1);
    check_lm_task(spec, who);
    // Under mpirun: data-parallel, each rank on its shard of every batch; rank 0 writes the files.
    const int ranks = distributed::world_size();
    const bool parallel = distributed::is_initialized() && ranks > 1;
    const bool writer = distributed::rank() == 0;
    LATTE_CHECK(!parallel || spec.batch % ranks == 0, who, ": --batch ", spec.batch, " does not split evenly over ",
                ranks, " ranks");
    const int64_t steps = args.integer("steps", load.empty() ? 1 : 0);
    const bool eval_only = steps == 0;  // only with --load
    if (eval_only)
        for (const char* flag : {"lr", "weight-decay", "checkpoint", "checkpoint-every", "beta2", "warmup", "schedule",
                                 "min-lr-ratio", "clip"})
            args.refuse(flag, "with --steps 0 (the loaded model is only evaluated)");
    const double lr = args.number("lr", true);
    const double weight_decay = args.number("weight-decay");
    LATTE_CHECK(weight_decay >= 0, who, ": --weight-decay must be non-negative, got ", weight_decay);
    double beta2 = args.number("beta2");
    LATTE_CHECK(beta2 >= 0 && beta2 < 1, who, ": --beta2 must be in [0, 1), got ", beta2);
    double clip = args.number("clip");
    LATTE_CHECK(clip >= 0, who, ": --clip must be 0 (off) or positive, got ", clip);
    Schedule schedule;
    schedule.lr = lr;
    schedule.steps = steps;
    const std::string schedule_name = args.str("schedule");
    LATTE_CHECK(schedule_name == "cosine" || schedule_name == "constant", who,
                ": --schedule must be cosine or constant, got '", schedule_name, "'");
    schedule.cosine = schedule_name == "cosine";
    schedule.min_ratio = args.number("min-lr-ratio");
    LATTE_CHECK(schedule.min_ratio >= 0 && schedule.min_ratio <= 1, who, ": --min-lr-ratio must be in [0, 1], got ",
                schedule.min_ratio);
    if (!schedule.cosine && args.given("min-lr-ratio"))
        args.refuse("min-lr-ratio", "with --schedule constant (it is the cosine schedule's end)");
    schedule.warmup = args.str("warmup") == "auto" ? std::min<int64_t>(100, steps / 10) : args.integer("warmup", 0);
    LATTE_CHECK(schedule.warmup < std::max<int64_t>(steps, 1), who, ": --warmup ", schedule.warmup,
                " must be below --steps ", steps);
    // The four streams are seeds 4*seed + k: past 2^62 - 1 they would wrap onto a smaller seed's run.
    const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 0, (int64_t{1} << 62) - 1));
    const int64_t eval_every = args.integer("eval-every", 0);
    const int64_t log_every = args.integer("log-every", 0);
    const int64_t eval_batches = args.integer("eval-batches", 1);
    const int64_t generate = args.integer("generate", 0, 10000);
    // Every product of the run (training, evaluation, generation) in this precision, as a
    // torch.autocast block around the loop would have it.
    const autocast::Precision precision = cli::precision(args, Device::cpu());
    const autocast::Guard autocast_scope(precision);
    auto check_fits_memory = [&] {
        check_memory(who, lm_training_bytes(c, std::max(spec.batch, generate), spec.length, steps),
                     "weights, gradients, AdamW state and one step's activations, roughly");
    };
    check_fits_memory();
    const std::string save = args.str("save"), resume = args.str("resume");
    const RunFolder run_folder = prepare_run_folder(
        args,
        default_run_name(args, "lm_" + lm_task_name(spec.task) + "_" + attention,
                         {"task", "attention", "out", "name", "overwrite", "save", "checkpoint", "checkpoint-every",
                          "resume", "log-every", "eval-every", "eval-batches", "generate", "timeout"}),
        {"loss.csv", "loss.svg", "accuracy.svg", "eval.csv", "summary.json", "checkpoint.safetensors"}, resume,
        {args.str("load")});
    const std::string& dir = run_folder.path();
    // The folder's name, as summary.json and the plots' titles give it.
    const std::string run = std::filesystem::path(dir).filename().string();
    const int64_t checkpoint_every = args.integer("checkpoint-every", 0);
    const std::string checkpoint = eval_only                 ? std::string()
                                   : args.given("checkpoint") ? args.str("checkpoint")
                                   : !resume.empty()          ? resume
                                                              : dir + "/checkpoint.safetensors";
    if (!eval_only) check_output_path(checkpoint, "latte lm: --checkpoint");
    if (!save.empty()) cli::check_output_file(args, "save");
    {  // no two of the files may be one, except the default: the checkpoint continues the --resume file
        const std::vector<std::pair<std::string, std::string>> outputs{
            {"--save", save}, {"--checkpoint", checkpoint}, {"--out's loss.csv", dir + "/loss.csv"},
            {"--out's loss.svg", dir + "/loss.svg"}, {"--out's accuracy.svg", dir + "/accuracy.svg"},
            {"--out's summary.json", dir + "/summary.json"}, {"--out's eval.csv", dir + "/eval.csv"}};
        for (size_t i = 0; i < outputs.size(); ++i) {
            for (size_t j = i + 1; j < outputs.size(); ++j)
                LATTE_CHECK(outputs[i].second.empty() || !same_path(outputs[i].second, outputs[j].second), who, ": ",
                            outputs[i].first, " '", outputs[i].second, "' and ", outputs[j].first, " '",
                            outputs[j].second, "' are the same file");
            if (outputs[i].first != "--checkpoint")
                LATTE_CHECK(resume.empty() || !same_path(outputs[i].second, resume), who, ": ", outputs[i].first, " '",
                            outputs[i].second, "' and --resume '", resume, "' are the same file");
            LATTE_CHECK(load.empty() || outputs[i].second.empty() || !same_path(outputs[i].second, load), who, ": ",
                        outputs[i].first, " '", outputs[i].second, "' and --load '", load,
                        "' are the same file (the run would overwrite the model it starts from)");
        }
    }
    // An existing --checkpoint other than the --resume file may be another run's: not replaced silently.
    if (!eval_only) check_checkpoint_is_ours(args, checkpoint, resume);
    // Under mpirun every rank must run this same run: its flags, and the files it reads by content.
    check_ranks_agree(args, {"out", "name", "overwrite", "save", "checkpoint", "device"}, {"load", "resume"});
    // What a resumed run must share with the saved one (everything but the length and the outputs).
    std::map<std::string, std::string> run_config{
        {"task", lm_task_name(spec.task)}, {"attention", attention}, {"layers", std::to_string(c.layers)},
        {"D", std::to_string(c.width)}, {"H", std::to_string(c.heads)}, {"G", std::to_string(attention == "gqa" ? c.kv_heads : 0)},
        {"r", std::to_string(c.rank)}, {"d_R", std::to_string(c.rope_dim)}, {"vocab", std::to_string(c.vocab)},
        {"L", std::to_string(spec.length)}, {"batch", std::to_string(spec.batch)}, {"lr", args.str("lr")},
        {"weight-decay", args.str("weight-decay")}, {"seed", std::to_string(seed)},
        {"rope", has_rope ? "on" : "off"}, {"rope-pairing", has_rope ? rope_pairing_name(c.rope_pairing) : "rotate_half"},
        {"latent-norm", c.latent_norm ? "on" : "off"}, {"q-rank", std::to_string(c.q_rank)},
        {"pairs", std::to_string(spec.pairs)}, {"queries", std::to_string(spec.queries)},
        {"beta2", nn::state_text::from_double(beta2)}, {"clip", nn::state_text::from_double(clip)},
        {"warmup", std::to_string(schedule.warmup)}, {"schedule", schedule_name},
        // The cosine schedule is laid over the run's length, so that length is part of the run.
        {"schedule-steps", schedule.cosine ? std::to_string(steps) : "0"},
        {"min-lr-ratio", schedule.cosine ? nn::state_text::from_double(schedule.min_ratio) : "0"},
        // Stored so that --resume alone continues as the run began; a resumed run may change them.
        {"steps", std::to_string(steps)}, {"checkpoint-every", std::to_string(checkpoint_every)},
        {"log-every", std::to_string(log_every)}, {"eval-every", std::to_string(eval_every)},
        {"eval-batches", std::to_string(eval_batches)}, {"precision", autocast::precision_name(precision)}};
    TrainCheckpoint saved;
    if (!resume.empty()) {
        saved = load_checkpoint(resume);
        // The flags were adopted (adopt_stored_flags above); compared here once resolved (--warmup auto
        // is a step count). The cosine schedule keeps the length it was laid over when --steps grows,
        // as PyTorch's T_max: the added steps run at its final rate.
        std::map<std::string, std::string> was = saved.run_config;
        for (const auto& [key, value] : flags_before_they_existed(attention)) was.emplace(key, value);
        run_config["schedule-steps"] = was.at("schedule-steps");
        for (const auto& [key, value] : run_config) {
            auto it = was.find(key);
            const std::string stored = it != was.end() ? it->second : "(none)";
            LATTE_CHECK(free_on_resume(key) || same_flag_value(stored, value),
                        resume_conflict(who, resume, key, stored, value));
        }
        for (const auto& [key, value] : was)  // and nothing else: a key no run writes was not written by latte lm
            LATTE_CHECK(run_config.count(key), who, ": cannot resume from ", resume, ": it has config.", key, "=", value,
                        ", which is not a setting latte lm stores");
        int64_t schedule_steps = 0;
        LATTE_CHECK(parse_int(was.at("schedule-steps"), schedule_steps) && schedule_steps >= 0 &&
                        schedule_steps <= steps,
                    who, ": cannot resume from ", resume, ": its schedule-steps '", was.at("schedule-steps"),
                    "' is not an integer in [0, --steps ", steps, "]");
        schedule.steps = schedule.cosine ? schedule_steps : steps;
        LATTE_CHECK(!schedule.cosine || schedule.steps > schedule.warmup, who, ": cannot resume from ", resume,
                    ": its cosine schedule of ", schedule.steps, " steps has ", schedule.warmup, " warm-up steps");
        LATTE_CHECK(saved.step <= steps, who, ": ", resume, " is at step ", saved.step, ", beyond --steps ", steps);
        // The model is the checkpoint's own: a run begun with --load may have settings no flag gives
        // (RoPE base, head dim, MLP width, norm), which a model built from the flags would lose.
        c = nn::decoder_lm_config(saved.module_config, who + ": " + resume);
        check_lm_checkpoint_model(saved, was, c, who, resume);
        check_fits_memory();
    }

    // The streams: weights, training batches, the held-out set and the generation prompts.
    Generator init(seed * 4), data(seed * 4 + 1);
    const uint64_t held_out_seed = seed * 4 + 2, prompt_seed = seed * 4 + 3;
    nn::DecoderLM model(c, init);
    if (!load.empty()) nn::load(model, load);
    nn::AdamW optimizer(nn::param_groups(model, weight_decay), lr, nn::AdamOptions{0.9, beta2, 1e-8, 0.01});
    std::vector<double> losses, accuracies;
    std::vector<int64_t> correct;  // answers right per training step
    std::optional<int64_t> steps_to_99;
    std::vector<HeldOutPoint> held_out;  // every evaluation during training
    const int64_t answers_per_step = spec.batch * lm_answers_per_sequence(spec);
    int64_t start_step = 0;
    if (!resume.empty()) {
        // The optimizer state must be this run's own (its lr, decays and step counts); every parameter
        // of a DecoderLM gets a gradient at every step. The model is built from module.*, so it matches.
        optimizer.set_lr(schedule.at(saved.step));  // the rate its last step used, as the state holds
        {
            const std::string theirs = saved.optimizer.metadata.count("lr") ? saved.optimizer.metadata.at("lr") : "";
            double was = 0;
            LATTE_CHECK(parse_double(theirs, was) && was == optimizer.lr(), who, ": cannot resume from ", resume,
                        ": its optimizer.lr is ", theirs.empty() ? "missing" : theirs, ", but this run's --lr ", lr,
                        " and schedule give ", optimizer.lr(), " at step ", saved.step,
                        " (a resumed run keeps the run's learning rate)");
        }
        check_resumable_optimizer(saved, optimizer, /*every_parameter_steps=*/true, who, resume);
        load_parameters(model, saved, resume, who);
        optimizer.load_state_dict(saved.optimizer);
        data.set_state(saved.data_generator);
        losses = saved.losses;
        auto it = saved.module_config.find(kCorrectKey);
        LATTE_CHECK(it != saved.module_config.end(), who, ": ", resume, " is not a latte lm checkpoint (no ",
                    kCorrectKey, ")");
        correct = split_counts(it->second, who + ": " + resume);
        LATTE_CHECK(int64_t(correct.size()) == saved.step, who, ": ", resume, " has ", correct.size(),
                    " accuracies for ", saved.step, " steps");
        for (size_t i = 0; i < correct.size(); ++i)
            LATTE_CHECK(correct[i] <= answers_per_step, who, ": cannot resume from ", resume, ": its ", kCorrectKey,
                        " says step ", i + 1, " got ", correct[i], " answers right, but a step has ", answers_per_step,
                        " answers (--batch ", spec.batch, " x ", lm_answers_per_sequence(spec), ")");
        for (int64_t k : correct) accuracies.push_back(double(k) / double(answers_per_step));
        if (auto s99 = saved.module_config.find(kSteps99Key); s99 != saved.module_config.end()) {
            int64_t v = 0;
            LATTE_CHECK(parse_int(s99->second, v) && v >= 1 && v <= saved.step, who, ": ", resume, " has a bad ",
                        kSteps99Key, " '", s99->second, "'");
            steps_to_99 = v;
        }
        if (auto h = saved.module_config.find(kHeldOutKey); h != saved.module_config.end())
            held_out = split_held_out(h->second, saved.step, who + ": " + resume);
        // An evaluation has a whole number of held-out batches of --batch sequences.
        for (const HeldOutPoint& p : held_out)
            LATTE_CHECK(p.total % answers_per_step == 0, who, ": cannot resume from ", resume, ": its ", kHeldOutKey,
                        " entry at step ", p.step, " has ", p.total, " answers, not a multiple of the ",
                        answers_per_step, " of a batch");
        // steps_to_99 is the first evaluation that reached 99%: absent exactly when none did.
        {
            auto first = std::find_if(held_out.begin(), held_out.end(), [](const HeldOutPoint& p) {
                return double(p.correct) / double(p.total) >= kTargetAccuracy;
            });
            const std::optional<int64_t> reached =
                first == held_out.end() ? std::nullopt : std::optional<int64_t>(first->step);
            LATTE_CHECK(reached == steps_to_99, who, ": cannot resume from ", resume, ": its ", kSteps99Key, " is ",
                        steps_to_99 ? std::to_string(*steps_to_99) : std::string("(none)"), ", but its ", kHeldOutKey,
                        " first reaches 99% ", reached ? "at step " + std::to_string(*reached) : std::string("at no step"));
        }
        start_step = saved.step;
    }
    // What a divergence message points to: the last checkpoint known good ("<path> (step k)").
    std::string last_checkpoint = resume.empty() ? "" : resume + " (step " + std::to_string(start_step) + ")";
    auto after = [&] {
        // The learning rate is not the only suspect: the model a run started from, and the decay.
        std::string causes;
        if (!load.empty())
            causes = losses.size() == size_t(start_step)
                         ? "No update had been made yet: the --load model " + load + " is the cause, not the learning "
                           "rate (its values are so large that the forward pass overflows). "
                         : "Besides the learning rate, the --load model " + load + " may be the cause. ";
        // AdamW's decoupled decay multiplies each decayed weight by 1 - lr x weight-decay at every step:
        // past 1 it flips their sign, past 2 it makes them grow.
        if (args.given("weight-decay")) {
            std::ostringstream factor;
            factor << 1 - lr * weight_decay;
            causes += "--weight-decay " + args.str("weight-decay") + " may be the cause too (AdamW multiplies the "
                      "decayed weights by 1 - lr x weight-decay = " + factor.str() + " at each step at the full rate). ";
        }
        return causes + (last_checkpoint.empty() ? std::string("No checkpoint was written.")
                                                 : "The last good checkpoint is " + last_checkpoint + ".");
    };
    // Every weight and optimizer buffer finite (and exp_avg_sq non-negative) before it is written,
    // on every rank, so that a diverged state never replaces a good checkpoint; and
    // (unless the evaluation has just shown it) a finite loss on the held-out set's first batch:
    // finite weights can still overflow the forward.
    auto write_checkpoint = [&](int64_t steps_done, bool probe) {
        check_finite_parameters(who, model, steps_done, optimizer.lr(), after());
        if (probe)
            check_finite_figure(who, "the loss on a held-out batch", evaluate(model, spec, held_out_seed, 1).loss,
                                steps_done, optimizer.lr(), after());
        nn::OptimizerState state = optimizer.state_dict();
        check_optimizer_state(who, state, steps_done, optimizer.lr(), after());
        last_checkpoint = checkpoint + " (step " + std::to_string(steps_done) + ")";
        if (!writer) return;
        std::map<std::string, std::string> module_config = model.config();
        module_config[kCorrectKey] = join_counts(correct);
        if (steps_to_99) module_config[kSteps99Key] = std::to_string(*steps_to_99);
        module_config[kHeldOutKey] = join_held_out(held_out);
        save_checkpoint(checkpoint, {steps_done, losses, model.named_parameters(), module_config, std::move(state),
                                     data.state(), run_config});
        std::printf("checkpoint at step %lld: %s\n", (long long)steps_done, checkpoint.c_str());
        std::fflush(stdout);
    };
    int64_t parameters = 0;
    for (const auto& [_, p] : model.named_parameters()) parameters += p.numel();
    std::string sizes = attention == "gqa"        ? " G=" + std::to_string(c.kv_heads)
                        : attention == "mla"      ? " r=" + std::to_string(c.rank)
                        : attention == "mla_rope" ? " r=" + std::to_string(c.rank) + " d_R=" + std::to_string(c.rope_dim)
                                                  : "";
    if (attention == "mla" || attention == "mla_rope") {
        sizes += c.latent_norm ? ", latent norm" : ", no latent norm";
        if (c.q_rank > 0) sizes += ", q_rank=" + std::to_string(c.q_rank);
    }
    if (has_rope && c.rope_pairing != RoPEPairing::RotateHalf) sizes += ", interleaved RoPE";
    const std::string task_sizes = spec.task == LMTask::MQAR ? " (" + std::to_string(spec.pairs) + " pairs, " +
                                                                   std::to_string(spec.queries) + " queries)"
                                                             : "";
    std::printf("lm %s%s, %s attention%s: %lld layers, D=%lld H=%lld%s, vocab %lld, L %lld, batch %lld, %lld steps, "
                "%lld parameters\n",
                lm_task_name(spec.task).c_str(), task_sizes.c_str(), attention.c_str(),
                (attention == "mha" || attention == "gqa") && !has_rope ? " without RoPE" : "", (long long)c.layers,
                (long long)c.width, (long long)c.heads, sizes.c_str(), (long long)spec.vocab, (long long)spec.length,
                (long long)spec.batch, (long long)steps, (long long)parameters);
    if (!eval_only)
        std::printf("AdamW lr %g (betas 0.9, %g), weight decay %g; %lld warm-up steps, then %s; gradient clip %s\n", lr,
                    beta2, weight_decay, (long long)schedule.warmup,
                    schedule.cosine ? ("cosine to " + fixed4(schedule.min_ratio) + " x lr").c_str() : "constant",
                    clip > 0 ? fixed4(clip).c_str() : "off");
    if (!resume.empty()) std::printf("resuming from %s at step %lld\n", resume.c_str(), (long long)start_step);
    if (!load.empty()) std::printf("loaded %s%s\n", load.c_str(), eval_only ? ": evaluating it only" : "");
    std::fflush(stdout);

    std::optional<nn::DistributedDataParallel> ddp;
    if (parallel) {
        ddp.emplace(model);  // checks every rank built the same model
        std::printf("data-parallel on %d ranks (MPI): each trains on %lld of the batch's %lld sequences\n", ranks,
                    (long long)(spec.batch / ranks), (long long)spec.batch);
    }
    std::optional<StopSignalGuard> signals(std::in_place);
    const auto start = std::chrono::steady_clock::now();
    Progress progress(start_step, steps, log_every);
    for (int64_t step = start_step + 1; step <= steps; ++step) {
        LMBatch b = make_lm_batch(spec, data);  // every rank draws the whole batch: one generator state
        if (parallel) b = {nn::shard_batch(b.ids), nn::shard_batch(b.targets)};
        optimizer.zero_grad();
        const Tensor logits = model.forward(b.ids);
        Tensor loss = cross_entropy(logits, b.targets);
        double value = loss.item();
        int64_t right = lm_accuracy(logits, b.targets).correct;
        int agreed_signal = 0;
        if (parallel) {  // the whole batch's loss and accuracy (every shard has as many answers), and signals
            std::vector<double> numbers{value, double(right)};
            agreed_signal = sum_over_ranks_and_agree_on_stop(numbers, stop_requested());
            value = numbers[0] / ranks;
            right = static_cast<int64_t>(std::llround(numbers[1]));
        }
        check_finite_loss(who, value, step, schedule.at(step), after());
        loss.backward();
        if (clip > 0) nn::clip_grad_norm_(model.parameters(), clip);
        optimizer.set_lr(schedule.at(step));
        optimizer.step();
        losses.push_back(value);
        correct.push_back(right);
        accuracies.push_back(double(correct.back()) / double(answers_per_step));
        const Progress::Tick tick = progress.after(step);
        if (eval_every > 0 && (step % eval_every == 0 || step == steps)) {
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const Evaluation e = evaluate(model, spec, held_out_seed, eval_batches);
            check_finite_figure(who, "the held-out loss", e.loss, step, optimizer.lr(), after());
            if (!steps_to_99 && e.accuracy.value() >= kTargetAccuracy) steps_to_99 = step;
            held_out.push_back({step, e.accuracy.correct, e.accuracy.total});
            std::printf("step %lld/%lld  loss %.4f  acc %.3f  held-out loss %.4f acc %.3f  %.0f tokens/s  ETA %.1fs\n",
                        (long long)step, (long long)steps, value, accuracies.back(), e.loss, e.accuracy.value(),
                        double((step - start_step) * spec.batch * spec.length) / std::max(seconds, 1e-9),
                        seconds / double(step - start_step) * double(steps - step));
            std::fflush(stdout);
        } else if (tick.print) {
            std::printf("step %lld/%lld  loss %.4f  acc %.3f  %.1f steps/s  ETA %.1fs\n", (long long)step,
                        (long long)steps, value, accuracies.back(), tick.steps_per_second, tick.eta_seconds);
            std::fflush(stdout);
        }
        const int signal = parallel ? agreed_signal : stop_requested();
        if (signal || (checkpoint_every > 0 && step % checkpoint_every == 0 && step != steps))
            write_checkpoint(step, /*probe=*/true);
        if (signal) {
            if (writer)
                std::fprintf(stderr, "latte lm: stopped by %s after step %lld of %lld; wrote the checkpoint %s (continue "
                                 "with --resume %s)\n",
                         signal_text(signal), (long long)step, (long long)steps, checkpoint.c_str(), checkpoint.c_str());
            return 128 + signal;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The final evaluation runs before the final checkpoint, on every rank (they hold the same model):
    // weights that give a non-finite held-out loss are not saved anywhere.
    const Evaluation e = evaluate(model, spec, held_out_seed, eval_batches);
    if (eval_only)
        LATTE_CHECK(std::isfinite(e.loss), who, ": the held-out loss of ", load, " is ", nonfinite_text(e.loss),
                    " (its outputs overflow); nothing was written");
    else
        check_finite_figure(who, "the held-out loss", e.loss, steps, optimizer.lr(), after());
    if (!eval_only) write_checkpoint(steps, /*probe=*/false);
    signals.reset();
    if (!writer) return 0;  // under mpirun, rank 0 alone generates and writes
    if (!eval_only) {
        plot::write_csv(dir + "/loss.csv", {{"loss", losses}, {"accuracy", accuracies}});
        plot::write_svg(dir + "/loss.svg", "latte lm: " + run + " loss", {{"loss", losses}});
        write_accuracy_svg(dir + "/accuracy.svg", "latte lm: " + run + " accuracy", accuracies);
    }

    if (generate > 0) {
        LMTaskSpec prompts = spec;
        prompts.batch = generate;
        Generator gen(prompt_seed);
        const LMBatch b = make_lm_batch(prompts, gen);
        const int64_t n = lm_prompt_length(spec), answer = lm_answer_length(spec), L = spec.length;
        const std::vector<int64_t> ids = b.ids.to_vector<int64_t>(), targets = b.targets.to_vector<int64_t>();
        std::vector<int64_t> prompt_ids;
        for (int64_t i = 0; i < generate; ++i)
            prompt_ids.insert(prompt_ids.end(), ids.begin() + i * L, ids.begin() + i * L + n);
        Tensor prompt = Tensor::empty({generate, n}, TensorOptions{}.with_dtype(DType::Int64));
        std::copy(prompt_ids.begin(), prompt_ids.end(), prompt.data_ptr<int64_t>());
        const std::vector<int64_t> out = lm_generate(model, prompt, answer, /*use_cache=*/true).to_vector<int64_t>();
        for (int64_t i = 0; i < generate; ++i) {
            const std::string got = tokens_text(out, size_t(i * answer), size_t(answer));
            const std::string want = tokens_text(targets, size_t(i * L + n - 1), size_t(answer));
            std::printf("generate %lld: %s -> %s (expected %s)%s\n", (long long)i,
                        tokens_text(prompt_ids, size_t(i * n), size_t(n)).c_str(), got.c_str(), want.c_str(),
                        got == want ? "" : "  wrong");
        }
    }
    // With --eval-every 0 the end is the only evaluation (with it, this repeats the last one).
    if (!eval_only && !steps_to_99 && e.accuracy.value() >= kTargetAccuracy) steps_to_99 = steps;
    if (!eval_only) {  // with --eval-every 0 the end is the only evaluation
        if (held_out.empty() || held_out.back().step != steps)
            held_out.push_back({steps, e.accuracy.correct, e.accuracy.total});
        write_held_out_csv(dir + "/eval.csv", held_out);
    }
    const int64_t per_layer = model.layer(0).attn->kv_cache_per_position();
    const std::string trained =
        eval_only ? " (the loaded model, not trained)"
                  : ", train loss " + fixed4(losses.back()) + "; " +
                        (steps_to_99 ? "99% held-out accuracy at step " + std::to_string(*steps_to_99)
                                     : "99% held-out accuracy not reached in " + std::to_string(steps) + " steps");
    std::printf("final: held-out accuracy %.4f (%lld/%lld answers), held-out loss %.4f%s; KV cache "
                "%lld bytes/token (%lld layers x %lld numbers x 4 bytes); %.2fs\n",
                e.accuracy.value(), (long long)e.accuracy.correct, (long long)e.accuracy.total, e.loss, trained.c_str(),
                (long long)(per_layer * c.layers * 4), (long long)c.layers, (long long)per_layer, seconds);
    LMRunSummary summary;
    summary.task = lm_task_name(spec.task);
    summary.attention = attention;
    summary.name = run;
    summary.rope = has_rope;
    summary.rope_pairing = rope_pairing_name(has_rope ? c.rope_pairing : RoPEPairing::RotateHalf);
    summary.latent_norm = c.latent_norm;
    summary.q_rank = c.q_rank;
    summary.pairs = spec.pairs;
    summary.queries = spec.queries;
    summary.lr = eval_only ? 0.0 : lr;
    summary.seconds = seconds;
    summary.layers = c.layers;
    summary.D = c.width;
    summary.H = c.heads;
    summary.G = attention == "gqa" || attention == "mha" ? model.lm_config().kv_heads : 0;
    summary.d = model.lm_config().head_dim;
    summary.r = c.rank;
    summary.d_R = c.rope_dim;
    summary.vocab = c.vocab;
    summary.L = spec.length;
    summary.batch = spec.batch;
    summary.seed = seed;
    summary.steps = steps;
    summary.eval_every = eval_every;
    summary.eval_batches = eval_batches;
    summary.parameters = parameters;
    summary.held_out_accuracy = e.accuracy.value();
    summary.held_out_correct = e.accuracy.correct;
    summary.held_out_total = e.accuracy.total;
    summary.held_out_loss = e.loss;
    summary.kv_numbers_per_layer = per_layer;
    summary.kv_bytes_per_token = per_layer * c.layers * 4;
    summary.steps_to_99 = steps_to_99;
    summary.loaded_from = load;
    write_lm_summary(dir + "/summary.json", summary);
    if (eval_only)
        std::printf("wrote %s/summary.json\n", dir.c_str());
    else
        std::printf("wrote loss.csv, eval.csv, loss.svg, accuracy.svg and summary.json in %s\n", dir.c_str());
    if (!save.empty()) {
        nn::save(model, save);
        std::printf("saved the model to %s\n", save.c_str());
    }
    return 0;
}

}  // namespace latte::experiments
