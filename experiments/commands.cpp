#include "experiments/commands.h"

#include "core/distributed.h"

#include <cmath>
#include <set>
#include <limits>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/autograd.h"
#include "core/parse.h"
#include "experiments/cli.h"
#include "experiments/finite_checks.h"
#include "experiments/inference.h"
#include "experiments/memory.h"
#include "experiments/checkpoint.h"
#include "experiments/plot.h"
#include "experiments/resume_flags.h"
#include "experiments/rank_agreement.h"
#include "experiments/run_folder.h"
#include "experiments/teacher_student.h"
#include "experiments/train_data.h"
#include "nn/checkpoint.h"
#include "nn/gqa.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

// Flags left out of a default run name: where files go and how the run reports, not what it computes.
const std::set<std::string> kNotInName{"out",    "name",      "overwrite", "save",   "checkpoint", "checkpoint-every",
                                       "resume", "log-every", "device",    "detect-anomaly", "timeout"};

// `latte compare` sets r itself (2*G*d), so it has no --r flag.
std::vector<cli::Flag> size_flags(bool with_rank = true) {
    std::vector<cli::Flag> flags{{"D", "64", "model width (D_1 = D_2 = D)"},
                                 {"H", "4", "query heads"},
                                 {"d", "16", "head dim (D = H*d)"},
                                 {"G", "2", "K/V heads of GQA"},
                                 {"r", "32", "latent rank of MLA"},
                                 {"batch", "8", "sequences per step"},
                                 {"L", "16", "sequence length (L1 = L2)"},
                                 {"steps", "1500", "training steps"},
                                 {"lr", "0.003", "Adam learning rate"},
                                 {"seed", "0", "random seed (weights and data)"},
                                 {"device", "cpu", "cpu, cuda or cuda:N (under mpirun, cuda is the GPU of the rank's place on its machine)"}};
    if (!with_rank) flags.erase(flags.begin() + 4);
    return flags;
}

std::set<std::string> with_ignored(std::set<std::string> more) {
    more.insert(kNotInName.begin(), kNotInName.end());
    return more;
}

// Elements of one model's weights; doubles, so absurd flags cannot overflow the estimate.
double parameter_count(const std::string& kind, const ModelSizes& s) {
    const double D = double(s.D), Hd = double(s.H) * double(s.d), Gd = double(s.G) * double(s.d), r = double(s.r);
    if (kind == "gqa") return 2 * D * Hd + 2 * D * Gd;
    if (kind == "mla") return 2 * D * Hd + D * r + 2 * r * Hd;
    return 4 * D * Hd;
}

// A rough upper bound, in bytes (float32), of training `models` one after another on one teacher
// and keeping each trained student (as the demo does): the teacher's weights and every student's;
// for the student in training, its gradients, Adam's two moments and one gradient-sized temporary
// (4 more copies of its weights), one step's activations with their gradients and the teacher's
// forward (3 x attention_activation_elements), the held-out forward on 4 batches, and the loss
// history (8 bytes a step).
double training_bytes(const TrainConfig& c, const std::vector<std::string>& models, double data_bytes = 0) {
    double kept = parameter_count("mha", c.sizes), largest = 0;
    for (const std::string& kind : models) {
        const double params = parameter_count(kind, c.sizes);
        AttentionSizes a{double(c.batch), double(c.L1), double(c.L2), double(c.sizes.D), double(c.sizes.H),
                         double(c.sizes.H) * double(c.sizes.d), kind == "mla" ? double(c.sizes.r) : 0.0};
        const double step = 3 * attention_activation_elements(a, 4);
        a.B *= 4;
        largest = std::max(largest, 4 * params + step + attention_activation_elements(a, 4));
        kept += params;
    }
    return 4 * (kept + largest) + 8 * double(c.steps) * double(models.size()) + data_bytes;
}

void check_training_memory(const TrainConfig& c, const std::vector<std::string>& models, const std::string& who,
                           double data_bytes = 0) {
    // On a GPU the weights live in device memory, where a failed allocation is a latte::Error anyway.
    if (!c.device.is_cuda())
        check_memory(who, training_bytes(c, models, data_bytes),
                     "weights, gradients, Adam state and one step's activations, roughly");
}

// Every sizes and training flag, checked for the students `models`; nothing is printed or
// allocated here, so a bad command line fails before any output. With `memory`, also the memory
// estimate (latte train checks it itself, once it knows the --data file's lengths).
TrainConfig config_from(const cli::Args& args, const std::vector<std::string>& models, bool memory = true) {
    const std::string who = "latte " + args.command();
    TrainConfig c;
    c.sizes.D = args.integer("D", 1);
    c.sizes.H = args.integer("H", 1);
    c.sizes.d = args.integer("d", 1);
    c.sizes.G = args.integer("G", 1);
    const int64_t Hd = checked_mul(c.sizes.H, c.sizes.d, who + ": --H times --d");
    LATTE_CHECK(c.sizes.D == Hd, who, ": --D ", c.sizes.D, " must equal --H times --d (", Hd, ")");
    if (args.command() == "compare") {
        c.sizes.r = checked_mul(2 * c.sizes.G, c.sizes.d, who + ": 2 * --G * --d");
        LATTE_CHECK(c.sizes.r <= c.sizes.D, who, ": the equal KV budget r = 2*G*d = ", c.sizes.r, " exceeds D = ",
                    c.sizes.D, " (an MLA latent wider than D adds nothing: lower --G)");
    } else {
        c.sizes.r = args.integer("r", 1);
    }
    c.batch = args.integer("batch", 1);
    c.L1 = c.L2 = args.integer("L", 1);
    c.steps = args.integer("steps", 1);
    c.lr = args.number("lr", true);
    c.seed = static_cast<uint64_t>(args.integer("seed", 0));
    c.device = cli::device(args);
    for (const std::string& kind : models) {
        LATTE_CHECK(kind == "mha" || kind == "gqa" || kind == "mla", who, ": --model must be mha, gqa or mla, got '",
                    kind, "'");
        LATTE_CHECK(kind != "gqa" || (c.sizes.G <= c.sizes.H && c.sizes.H % c.sizes.G == 0), who, ": --H ", c.sizes.H,
                    " is not a multiple of --G ", c.sizes.G, " (GQA shares each K/V head among H/G query heads)");
    }
    if (memory) check_training_memory(c, models, who);
    return c;
}

// The demo's second table: the trained GQA converted to MLA, and the trained MLA run by the
// absorbed path and decoded with its latent cache, each checked against the vanilla forward.
void print_inference_checks(const nn::Attention& gqa_student, const nn::Attention& mla_student,
                            const TrainConfig& c) {
    const auto& gqa = dynamic_cast<const nn::GroupedQueryAttention&>(gqa_student);
    const auto& mla = dynamic_cast<const nn::MultiHeadLatentAttention&>(mla_student);
    const ConversionCheck conversion = convert_and_check(gqa, 0, c.seed);
    Generator gen(c.seed + 7);
    const TensorOptions on_device = TensorOptions{}.with_device(c.device);
    Tensor x = randn({c.batch, c.L1, c.sizes.D}, gen, on_device), y = randn({c.batch, c.L2, c.sizes.D}, gen, on_device);
    double absorbed_error = 0;
    {
        NoGradGuard no_grad;
        absorbed_error = relative_error(mla.forward_absorbed(x, y), mla.forward(x, y));
    }
    const DecodeReport decode = run_decode(mla, c.batch, c.L1, c.seed + 8, true);
    // The table's figures: a non-finite one (weights so large the forward overflows) fails the demo.
    const std::pair<const char*, double> figures[] = {{"the GQA -> MLA conversion", conversion.relative_error},
                                                      {"the MLA absorbed path", absorbed_error},
                                                      {"the MLA decode with its latent cache", decode.relative_error}};
    for (const auto& [what, error] : figures)
        LATTE_CHECK(std::isfinite(error), "latte demo: the check of ", what, " against the vanilla forward gave "
                    "relative error ", nonfinite_text(error), " (after ", c.steps, " steps at lr ", c.lr,
                    "; non-finite outputs): nothing was written");
    std::printf("\n%-44s %11s %22s\n", "inference check (trained students)", "rel. error", "KV cache/position");
    std::printf("%-44s %11.2e %11lld -> %lld\n",
                ("GQA -> MLA conversion (r = " + std::to_string(conversion.mla->rank()) + ")").c_str(),
                conversion.relative_error, (long long)gqa.kv_cache_per_position(),
                (long long)conversion.mla->kv_cache_per_position());
    std::printf("%-44s %11.2e %22lld\n", "MLA absorbed path vs vanilla forward", absorbed_error,
                (long long)mla.kv_cache_per_position());
    std::printf("%-44s %11.2e %22lld\n", "MLA decode (latent cache) vs causal forward", decode.relative_error,
                (long long)decode.numbers_per_position);
}

}  // namespace

int cmd_train(int argc, char** argv, int first) {
    auto flags = size_flags();
    flags.insert(flags.begin(), {"model", "mha", "student: mha, gqa or mla"});
    flags.push_back(cli::file_flag("save", "write the trained student (weights only) to this .safetensors file"));
    flags.push_back(cli::folder_flag("out", "runs", "parent folder of the run folders (created as needed)"));
    for (const cli::Flag& f : run_folder_flags("train_MODEL and each flag given, e.g. train_mla_steps20"))
        flags.push_back(f);
    flags.push_back(cli::file_flag("init", "start from these weights (a --save file) instead of random ones"));
    flags.push_back(cli::file_flag("data", "train on x, y, target from this .safetensors file (batches in order) instead of the teacher"));
    flags.push_back(cli::file_flag("checkpoint", "training checkpoint file (default: the --resume file, else OUT/NAME/checkpoint.safetensors)"));
    flags.push_back({"checkpoint-every", "0", "also write the checkpoint every N steps (it is always written at the end and on SIGINT/SIGTERM)"});
    flags.push_back(cli::file_flag("resume", "continue the run saved in this checkpoint, with its flags and in its folder (--steps may grow)"));
    flags.push_back({"log-every", "250", "a progress line every N steps (0: only the one every ~10 s)"});
    flags.push_back({"detect-anomaly", "false", "name the op whose backward first made a NaN/Inf gradient (slow)", true});
    flags.push_back(cli::precision_flag());
    flags.push_back(cli::timeout_flag());
    cli::Args args("train", "Teacher-student regression: a fixed random MHA teacher makes targets from random x, y;\n"
                            "the student learns them with Adam and an MSE loss. Files go to OUT/NAME/.",
                   flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    if (args.given("resume")) {  // the flags not given are the checkpoint's
        std::map<std::string, std::string> stored = load_checkpoint_flags(args.str("resume"), "train");
        if (!stored["data"].empty()) stored.erase("L");  // the data's lengths ("L1,L2"), not a flag's value
        adopt_stored_flags(args, args.str("resume"), stored);
    }
    // Every flag, output path and input file is checked before the first line of output.
    TrainConfig c = config_from(args, {args.str("model")}, /*memory=*/false);
    c.model = args.str("model");
    // The teacher is an MHA of D, H, d: G and r size only the GQA and MLA students.
    if (c.model != "gqa") args.refuse("G", "with --model " + c.model + " (only a GQA student has K/V head groups)");
    if (c.model != "mla") args.refuse("r", "with --model " + c.model + " (only an MLA student has a latent rank)");
    c.init = args.str("init");
    c.data = args.str("data");
    c.resume = args.str("resume");
    c.checkpoint_every = args.integer("checkpoint-every", 0);
    c.log_every = args.integer("log-every", 0);
    c.detect_anomaly = args.on("detect-anomaly");
    c.precision = cli::precision(args, c.device);
    cli::group_timeout("train", argc, argv, first);  // checked alone too, for a run that is not under mpirun
    LATTE_CHECK(c.data.empty() || !args.given("L"), "latte train: --L has no effect with --data (the lengths come from the data)");
    double data_bytes = 0;
    if (!c.data.empty()) {  // its header: the lengths for the memory estimate, and its shapes and dtypes
        const TrainingDataLayout data = read_training_data_header(c.data, c.sizes.D, c.sizes.D, c.batch);
        c.L1 = data.L1;
        c.L2 = data.L2;
        data_bytes = 8 * double(data.size) * double(c.sizes.D) * (2 * double(data.L1) + double(data.L2));
    }
    check_training_memory(c, {c.model}, "latte train", data_bytes);
    const RunFolder run_folder =
        prepare_run_folder(args, default_run_name(args, "train_" + c.model, with_ignored({"model"})),
                           {"loss.csv", "loss.svg", "checkpoint.safetensors"}, c.resume, {c.init, c.data});
    const std::string& dir = run_folder.path();
    c.checkpoint = args.given("checkpoint") ? args.str("checkpoint")
                   : !c.resume.empty()      ? c.resume
                                            : dir + "/checkpoint.safetensors";
    check_output_path(c.checkpoint, "latte train: --checkpoint");
    if (!args.str("save").empty()) cli::check_output_file(args, "save");
    // No two of the files may be one (compared as canonical paths, and by inode when they exist),
    // except the default: the checkpoint continues the --resume file.
    struct File {
        std::string flag, path;
        bool output;
    };
    const std::vector<File> files{{"--save", args.str("save"), true},
                                  {"--checkpoint", c.checkpoint, true},
                                  {"the run's loss.csv", dir + "/loss.csv", true},
                                  {"the run's loss.svg", dir + "/loss.svg", true},
                                  {"--init", c.init, false},
                                  {"--data", c.data, false},
                                  {"--resume", c.resume, false}};
    for (size_t i = 0; i < files.size(); ++i)
        for (size_t j = i + 1; j < files.size(); ++j) {
            const File &a = files[i], &b = files[j];
            if (!(a.output || b.output) || (a.flag == "--checkpoint" && b.flag == "--resume")) continue;
            LATTE_CHECK(!same_path(a.path, b.path), "latte train: ", a.flag, " '", a.path, "' and ", b.flag, " '",
                        b.path, "' are the same file");
        }
    // An existing --checkpoint other than the --resume file may be another run's: not replaced silently.
    check_checkpoint_is_ours(args, c.checkpoint, c.resume);
    // Under mpirun every rank must run this same run: its flags, and the files it reads by content.
    // A resume does not read --init (its weights come from the checkpoint): its path is compared.
    check_ranks_agree(args, {"out", "name", "overwrite", "save", "checkpoint", "device"},
                      c.resume.empty() ? std::set<std::string>{"init", "data", "resume"}
                                       : std::set<std::string>{"data", "resume"});
    std::shared_ptr<nn::Attention> teacher;
    if (c.data.empty()) teacher = make_teacher(c.sizes, c.seed, c.device);
    // Printed once the inputs are read and checked (train_student), so a bad one fails before it.
    c.on_ready = [&] {
        if (distributed::world_size() > 1)
            std::printf("data-parallel on %d ranks (MPI): each trains on %lld of the batch's %lld rows\n",
                        distributed::world_size(), (long long)(c.batch / distributed::world_size()),
                        (long long)c.batch);
        // Only the sizes this student has: G is GQA's, r is MLA's.
        const std::string extra = c.model == "gqa"   ? " G=" + std::to_string(c.sizes.G)
                                  : c.model == "mla" ? " r=" + std::to_string(c.sizes.r)
                                                     : "";
        std::printf("training %s student: D=%lld H=%lld d=%lld%s, batch %lld, %s%lld steps, in %s%s%s\n",
                    c.model.c_str(), (long long)c.sizes.D, (long long)c.sizes.H, (long long)c.sizes.d, extra.c_str(),
                    (long long)c.batch,
                    c.data.empty() ? ("L " + std::to_string(c.L1) + ", ").c_str() : ("data " + c.data + ", ").c_str(),
                    (long long)c.steps, dir.c_str(), c.resume.empty() ? "" : ", resuming from ", c.resume.c_str());
        std::fflush(stdout);
    };
    TrainResult r;
    try {
        r = train_student(c, teacher.get());
    } catch (const TrainingStopped& stop) {
        if (distributed::rank() == 0) std::fprintf(stderr, "%s\n", stop.what());
        return 128 + stop.signal;  // the shell's convention for a process ended by a signal
    }
    if (distributed::rank() != 0) return 0;  // under mpirun, rank 0 alone writes and prints
    plot::write_csv(dir + "/loss.csv", {{c.model, r.losses}});
    plot::write_svg(dir + "/loss.svg", "latte train: " + c.model + " student", {{c.model, r.losses}});
    // An all-zero target has no power to compare with (the percentage would be inf or nan).
    char share[64] = "target power 0";
    if (r.target_power > 0) std::snprintf(share, sizeof share, "%.1f%% of target power", 100 * r.eval_loss / r.target_power);
    std::printf("summary: final train loss %.3e, %s loss %.3e (%s), %lld parameters, "
                "KV cache %lld numbers/position, %.2fs\n",
                r.losses.back(), r.eval_set.c_str(), r.eval_loss, share,
                (long long)r.parameters, (long long)r.kv_cache_per_position, r.seconds);
    std::printf("wrote %s/loss.csv and %s/loss.svg\n", dir.c_str(), dir.c_str());
    if (!args.str("save").empty()) {
        nn::save(*r.student, args.str("save"));
        std::printf("saved the student to %s\n", args.str("save").c_str());
    }
    return 0;
}

namespace {

// A rough upper bound, in bytes, of `latte forward` from the files' headers: the weights three
// times (loaded, converted, gradients), the inputs twice, and one forward's activations (twice
// with a backward). 0 when the files do not describe a run (their errors come later, with reasons).
double forward_bytes(const nn::SafetensorsHeader& weights, const nn::SafetensorsHeader& inputs, DType dtype) {
    double params = 0, input_elements = 0, width = 0, latent = 0;
    for (const auto& e : weights.tensors) {
        params += double(shape_numel(e.shape));
        if (e.name == "W_Q.weight" && e.shape.size() == 2) width = double(e.shape[0]);
        if (e.name == "W_DKV.weight" && e.shape.size() == 2) latent = double(e.shape[0]);
    }
    Shape x, y;
    bool backward = false;
    for (const auto& e : inputs.tensors) {
        input_elements += double(shape_numel(e.shape));
        if (e.name == "x") x = e.shape;
        if (e.name == "y") y = e.shape;
        backward = backward || e.name == "grad_out";
    }
    int64_t heads = 1;
    auto h = weights.metadata.find("H");
    if (x.size() != 3 || y.size() != 3 || h == weights.metadata.end() || !parse_int(h->second, heads)) return 0;
    const AttentionSizes a{double(x[0]), double(x[1]), double(y[1]), double(std::max(x[2], y[2])), double(heads),
                           width, latent};
    return double(dtype_size(dtype)) * (3 * params + 2 * input_elements +
                                        (backward ? 2 : 1) * attention_activation_elements(a, dtype_size(dtype)));
}

}  // namespace

void run_forward(const std::string& weights, const std::string& inputs, const std::string& out, DType dtype,
                 Device device) {
    // Both headers are checked, and the run's memory estimated, before anything is allocated.
    const nn::SafetensorsHeader wheader = nn::read_safetensors_header(weights);
    nn::attention_parameter_shapes(wheader.metadata, "load: " + weights);
    const nn::SafetensorsHeader iheader = nn::read_safetensors_header(inputs);
    for (const auto& e : iheader.tensors) {
        LATTE_CHECK(e.name == "x" || e.name == "y" || e.name == "grad_out", "latte forward: ", inputs,
                    " has an unexpected tensor '", e.name, "' (expected x, y, grad_out)");
        LATTE_CHECK(e.dtype == DType::Float32 || e.dtype == DType::Float64, "latte forward: ", inputs, ": tensor '",
                    e.name, "' is ", dtype_name(e.dtype), ", expected float32 or float64");
    }
    if (!device.is_cuda())
        check_memory("latte forward", forward_bytes(wheader, iheader, dtype),
                     "weights, gradients, inputs and one forward's activations, roughly");
    auto module = nn::load_attention(weights, dtype);
    module->to(device);
    const nn::SafetensorsFile ifile = nn::load_safetensors(inputs);
    Tensor x, y, grad_out;
    for (const auto& [name, t] : ifile.tensors) {
        nn::check_finite(t, "latte forward: " + inputs + ": tensor '" + name + "'");
        if (name == "x") x = to(to(t, dtype), device);
        else if (name == "y") y = to(to(t, dtype), device);
        else grad_out = to(to(t, dtype), device);
    }
    LATTE_CHECK(x.defined() && y.defined(), "latte forward: ", inputs, " needs tensors 'x' and 'y'");
    const bool backward = grad_out.defined();
    if (backward) {
        x.requires_grad_(true);
        y.requires_grad_(true);
    }
    Tensor result = module->forward(x, y);
    std::vector<std::pair<std::string, Tensor>> outputs{{"out", result}};
    if (backward) {
        LATTE_CHECK(grad_out.shape() == result.shape(), "latte forward: grad_out has shape ",
                    shape_str(grad_out.shape()), ", out has shape ", shape_str(result.shape()));
        result.backward(grad_out);
        outputs.emplace_back("grad_x", x.grad());
        outputs.emplace_back("grad_y", y.grad());
        for (const auto& [name, p] : module->named_parameters()) outputs.emplace_back("grad." + name, p.grad());
    }
    // Finite inputs and weights can still overflow: a nan or inf result is refused, not written.
    for (const auto& [name, t] : outputs)
        nn::check_finite(t, "latte forward: " + out + ": output '" + name + "'");
    nn::save_safetensors(out, outputs, module->config());
}

int cmd_forward(int argc, char** argv, int first) {
    cli::Args args("forward",
                   "Runs a module from a weights file on inputs from another, writing out and, when the inputs\n"
                   "hold grad_out, grad_x, grad_y and grad.<param> for every parameter.",
                   {cli::file_flag("weights", "weights .safetensors; its metadata says module (mha|gqa|mla) and sizes"),
                    cli::file_flag("inputs", ".safetensors with x (B,L1,D1), y (B,L2,D2) and optional grad_out (B,L1,D1)"),
                    cli::file_flag("out", "output .safetensors"),
                    {"dtype", "f32", "f32 or f64"},
                    {"device", "cpu", "cpu, cuda or cuda:N"}},
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    LATTE_CHECK(!args.str("weights").empty() && !args.str("inputs").empty() && !args.str("out").empty(),
                "latte forward: --weights, --inputs and --out are required (see --help)");
    const DType dtype = cli::dtype(args);
    const Device device = cli::device(args);
    cli::check_output_file(args, "out");
    cli::check_distinct(args, "out", "weights");
    cli::check_distinct(args, "out", "inputs");
    run_forward(args.str("weights"), args.str("inputs"), args.str("out"), dtype, device);
    std::printf("wrote %s\n", args.str("out").c_str());
    return 0;
}

int cmd_demo(int argc, char** argv, int first) {
    auto flags = size_flags();
    flags.push_back(cli::folder_flag("out", "runs", "parent folder of the run folders (created as needed)"));
    for (const cli::Flag& f : run_folder_flags("demo and each flag given, e.g. demo_steps200")) flags.push_back(f);
    cli::Args args("demo", "Trains an MHA, a GQA and an MLA student on one MHA teacher and compares them.\n"
                           "Files go to OUT/NAME/.", flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    TrainConfig c = config_from(args, {"mha", "gqa", "mla"});
    c.who = "latte demo";
    const RunFolder run_folder =
        prepare_run_folder(args, default_run_name(args, "demo", kNotInName), {"loss.csv", "loss.svg"});
    const std::string& dir = run_folder.path();
    auto teacher = make_teacher(c.sizes, c.seed, c.device);
    std::printf("latte demo: MHA, GQA (G=%lld) and MLA (r=%lld) students learn one MHA teacher (D=%lld, H=%lld, d=%lld)\n",
                (long long)c.sizes.G, (long long)c.sizes.r, (long long)c.sizes.D, (long long)c.sizes.H,
                (long long)c.sizes.d);
    std::vector<plot::Curve> curves;
    std::vector<std::pair<std::string, TrainResult>> results;
    for (const char* kind : {"mha", "gqa", "mla"}) {
        c.model = kind;
        results.emplace_back(kind, train_teacher_student(c, *teacher));
        curves.emplace_back(kind, results.back().second.losses);
    }
    std::printf("\n%-6s %12s %12s %10s %12s %9s\n", "model", "train loss", "held-out", "params", "KV/position", "time");
    for (const auto& [kind, r] : results)
        std::printf("%-6s %12.3e %12.3e %10lld %12lld %8.2fs\n", kind.c_str(), r.losses.back(), r.eval_loss,
                    (long long)r.parameters, (long long)r.kv_cache_per_position, r.seconds);
    print_inference_checks(*results[1].second.student, *results[2].second.student, c);
    plot::write_csv(dir + "/loss.csv", curves);
    plot::write_svg(dir + "/loss.svg", "latte demo: students of one MHA teacher", curves);
    std::printf("\nwrote %s/loss.csv and %s/loss.svg\n", dir.c_str(), dir.c_str());
    return 0;
}

int cmd_compare(int argc, char** argv, int first) {
    auto flags = size_flags(false);
    flags.push_back({"seeds", "3", "number of seeds"});
    flags.push_back(cli::folder_flag("out", "runs", "parent folder of the run folders (created as needed)"));
    for (const cli::Flag& f : run_folder_flags("compare and each flag given, e.g. compare_G1_seeds5")) flags.push_back(f);
    flags.push_back({"log-every", "0", "a progress line every N steps of each training (0: only the one every ~10 s)"});
    cli::Args args("compare",
                   "GQA vs MLA at an equal KV-cache budget per token (GQA 2*G*d = MLA r): both learn the same\n"
                   "MHA teacher; final held-out losses over several seeds. MLA's r is 2*G*d (at most D).\n"
                   "Writes OUT/NAME/results.csv (held-out loss per seed), loss.csv and loss.svg (training curves).",
                   flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    TrainConfig c = config_from(args, {"gqa", "mla"});
    c.who = "latte compare";
    c.log_every = args.integer("log-every", 0);
    const int64_t seeds = args.integer("seeds", 1);
    const uint64_t first_seed = c.seed;  // --seed: the seeds are first_seed .. first_seed + seeds - 1
    LATTE_CHECK(first_seed <= std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(seeds), "latte compare: "
                "--seed ", first_seed, " plus --seeds ", seeds, " overflows");
    const RunFolder run_folder = prepare_run_folder(args, default_run_name(args, "compare", kNotInName),
                                                    {"results.csv", "loss.csv", "loss.svg"});
    const std::string& dir = run_folder.path();
    std::printf("equal KV budget: GQA G=%lld (2*G*d = %lld) vs MLA r=%lld; D=%lld H=%lld d=%lld, %lld steps, in %s\n",
                (long long)c.sizes.G, (long long)(2 * c.sizes.G * c.sizes.d), (long long)c.sizes.r,
                (long long)c.sizes.D, (long long)c.sizes.H, (long long)c.sizes.d, (long long)c.steps, dir.c_str());
    std::printf("%5s %14s %14s\n", "seed", "GQA held-out", "MLA held-out");
    std::fflush(stdout);
    double sum_gqa = 0, sum_mla = 0;
    int mla_wins = 0;
    std::vector<plot::Curve> curves;
    std::string results = "seed,gqa_held_out,mla_held_out\n";
    for (int64_t i = 0; i < seeds; ++i) {
        const uint64_t s = first_seed + static_cast<uint64_t>(i);
        c.seed = s;
        auto teacher = make_teacher(c.sizes, c.seed, c.device);
        double held_out[2] = {0, 0};
        for (int k = 0; k < 2; ++k) {
            c.model = k == 0 ? "gqa" : "mla";
            c.progress_label = "seed " + std::to_string(s) + " " + c.model;
            TrainResult r = train_teacher_student(c, *teacher);
            held_out[k] = r.eval_loss;
            curves.emplace_back(c.model + " seed " + std::to_string(s), std::move(r.losses));
        }
        const double gqa = held_out[0], mla = held_out[1];
        std::printf("%5llu %14.3e %14.3e\n", (unsigned long long)s, gqa, mla);
        std::fflush(stdout);
        std::ostringstream row;
        row.precision(17);
        row << s << "," << gqa << "," << mla << "\n";
        results += row.str();
        sum_gqa += gqa;
        sum_mla += mla;
        mla_wins += mla < gqa;
    }
    std::printf("mean  %14.3e %14.3e   (MLA lower in %d of %lld seeds)\n", sum_gqa / double(seeds),
                sum_mla / double(seeds), mla_wins, (long long)seeds);
    write_file_atomically(dir + "/results.csv", results, "latte compare: results.csv");
    plot::write_csv(dir + "/loss.csv", curves);
    plot::write_svg(dir + "/loss.svg", "latte compare: GQA vs MLA at an equal KV budget", curves);
    std::printf("wrote results.csv, loss.csv and loss.svg in %s\n", dir.c_str());
    return 0;
}

}  // namespace latte::experiments
