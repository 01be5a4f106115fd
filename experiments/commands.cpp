#include "experiments/commands.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/autograd.h"
#include "experiments/cli.h"
#include "experiments/inference.h"
#include "experiments/plot.h"
#include "experiments/teacher_student.h"
#include "nn/gqa.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

std::vector<cli::Flag> size_flags() {
    return {{"D", "64", "model width (D_1 = D_2 = D)"},
            {"H", "4", "query heads"},
            {"d", "16", "head dim (D = H*d)"},
            {"G", "2", "K/V heads of GQA"},
            {"r", "32", "latent rank of MLA"},
            {"batch", "8", "sequences per step"},
            {"L", "16", "sequence length (L1 = L2)"},
            {"steps", "1500", "training steps"},
            {"lr", "0.003", "Adam learning rate"},
            {"seed", "0", "random seed (weights and data)"},
            {"device", "cpu", "cpu, cuda or cuda:N"}};
}

TrainConfig config_from(const cli::Args& args) {
    TrainConfig c;
    c.sizes = {args.integer("D"), args.integer("H"), args.integer("d"), args.integer("G"), args.integer("r")};
    c.batch = args.integer("batch");
    c.L1 = c.L2 = args.integer("L");
    c.steps = args.integer("steps");
    c.lr = args.number("lr");
    c.seed = static_cast<uint64_t>(args.integer("seed"));
    c.device = Device::parse(args.str("device"));
    LATTE_CHECK(c.sizes.D == c.sizes.H * c.sizes.d, "latte: --D ", c.sizes.D, " must equal --H times --d (",
                c.sizes.H * c.sizes.d, ")");
    return c;
}

std::string make_run_dir(const std::string& base, const std::string& name) {
    const std::filesystem::path dir = std::filesystem::path(base) / name;
    std::filesystem::create_directories(dir);
    return dir.string();
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
    flags.push_back({"save", "", "write the trained student to this .safetensors file"});
    flags.push_back({"out", "runs", "folder for the run's loss.csv and loss.svg"});
    cli::Args args("train", "Teacher-student regression: a fixed random MHA teacher makes targets from random x, y;\n"
                            "the student learns them with Adam and an MSE loss.",
                   flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    TrainConfig c = config_from(args);
    c.model = args.str("model");
    auto teacher = make_teacher(c.sizes, c.seed, c.device);
    std::printf("training %s student: D=%lld H=%lld d=%lld G=%lld r=%lld, batch %lld, L %lld, %lld steps\n",
                c.model.c_str(), (long long)c.sizes.D, (long long)c.sizes.H, (long long)c.sizes.d, (long long)c.sizes.G,
                (long long)c.sizes.r, (long long)c.batch, (long long)c.L1, (long long)c.steps);
    const TrainResult r = train_teacher_student(c, *teacher);
    const std::string dir = make_run_dir(args.str("out"), "train_" + c.model);
    plot::write_csv(dir + "/loss.csv", {{c.model, r.losses}});
    plot::write_svg(dir + "/loss.svg", "latte train: " + c.model + " student", {{c.model, r.losses}});
    std::printf("summary: final train loss %.3e, held-out loss %.3e (%.1f%% of target power), %lld parameters, "
                "KV cache %lld numbers/position, %.2fs\n",
                r.losses.back(), r.eval_loss, 100 * r.eval_loss / r.target_power, (long long)r.parameters,
                (long long)r.kv_cache_per_position, r.seconds);
    std::printf("wrote %s/loss.csv and %s/loss.svg\n", dir.c_str(), dir.c_str());
    if (!args.str("save").empty()) {
        nn::save(*r.student, args.str("save"));
        std::printf("saved the student to %s\n", args.str("save").c_str());
    }
    return 0;
}

void run_forward(const std::string& weights, const std::string& inputs, const std::string& out, DType dtype,
                 Device device) {
    const nn::SafetensorsFile wfile = nn::load_safetensors(weights);
    Generator unused(0);
    auto module = nn::make_attention(wfile.metadata, unused, dtype);
    nn::load(*module, weights);
    module->to(device);
    const nn::SafetensorsFile ifile = nn::load_safetensors(inputs);
    Tensor x, y, grad_out;
    for (const auto& [name, t] : ifile.tensors) {
        if (name == "x") x = to(to(t, dtype), device);
        else if (name == "y") y = to(to(t, dtype), device);
        else if (name == "grad_out") grad_out = to(to(t, dtype), device);
        else LATTE_FAIL("latte forward: ", inputs, " has an unexpected tensor '", name, "' (expected x, y, grad_out)");
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
    nn::save_safetensors(out, outputs, module->config());
}

int cmd_forward(int argc, char** argv, int first) {
    cli::Args args("forward",
                   "Runs a module from a weights file on inputs from another, writing out and, when the inputs\n"
                   "hold grad_out, grad_x, grad_y and grad.<param> for every parameter.",
                   {{"weights", "", "weights .safetensors; its metadata says module (mha|gqa|mla) and sizes"},
                    {"inputs", "", ".safetensors with x (B,L1,D1), y (B,L2,D2) and optional grad_out (B,L1,D1)"},
                    {"out", "", "output .safetensors"},
                    {"dtype", "f32", "f32 or f64"},
                    {"device", "cpu", "cpu, cuda or cuda:N"}},
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    LATTE_CHECK(!args.str("weights").empty() && !args.str("inputs").empty() && !args.str("out").empty(),
                "latte forward: --weights, --inputs and --out are required (see --help)");
    run_forward(args.str("weights"), args.str("inputs"), args.str("out"), cli::parse_dtype(args.str("dtype")),
                Device::parse(args.str("device")));
    std::printf("wrote %s\n", args.str("out").c_str());
    return 0;
}

int cmd_demo(int argc, char** argv, int first) {
    auto flags = size_flags();
    flags.push_back({"out", "runs", "folder for loss.csv and loss.svg"});
    cli::Args args("demo", "Trains an MHA, a GQA and an MLA student on one MHA teacher and compares them.", flags,
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    TrainConfig c = config_from(args);
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
    const std::string dir = make_run_dir(args.str("out"), "demo");
    plot::write_csv(dir + "/loss.csv", curves);
    plot::write_svg(dir + "/loss.svg", "latte demo: students of one MHA teacher", curves);
    std::printf("\nwrote %s/loss.csv and %s/loss.svg\n", dir.c_str(), dir.c_str());
    return 0;
}

int cmd_compare(int argc, char** argv, int first) {
    auto flags = size_flags();
    flags.push_back({"seeds", "3", "number of seeds"});
    cli::Args args("compare",
                   "GQA vs MLA at an equal KV-cache budget per token (GQA 2*G*d = MLA r): both learn the same\n"
                   "MHA teacher; final held-out losses over several seeds. --r is set to 2*G*d.",
                   flags, argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    TrainConfig c = config_from(args);
    c.sizes.r = 2 * c.sizes.G * c.sizes.d;
    c.progress = false;
    const int64_t seeds = args.integer("seeds");
    std::printf("equal KV budget: GQA G=%lld (2*G*d = %lld) vs MLA r=%lld; D=%lld H=%lld d=%lld, %lld steps\n",
                (long long)c.sizes.G, (long long)(2 * c.sizes.G * c.sizes.d), (long long)c.sizes.r,
                (long long)c.sizes.D, (long long)c.sizes.H, (long long)c.sizes.d, (long long)c.steps);
    std::printf("%5s %14s %14s\n", "seed", "GQA held-out", "MLA held-out");
    double sum_gqa = 0, sum_mla = 0;
    int mla_wins = 0;
    for (int64_t s = 0; s < seeds; ++s) {
        c.seed = static_cast<uint64_t>(s);
        auto teacher = make_teacher(c.sizes, c.seed, c.device);
        c.model = "gqa";
        const double gqa = train_teacher_student(c, *teacher).eval_loss;
        c.model = "mla";
        const double mla = train_teacher_student(c, *teacher).eval_loss;
        std::printf("%5lld %14.3e %14.3e\n", (long long)s, gqa, mla);
        sum_gqa += gqa;
        sum_mla += mla;
        mla_wins += mla < gqa;
    }
    std::printf("mean  %14.3e %14.3e   (MLA lower in %d of %lld seeds)\n", sum_gqa / double(seeds),
                sum_mla / double(seeds), mla_wins, (long long)seeds);
    return 0;
}

}  // namespace latte::experiments
