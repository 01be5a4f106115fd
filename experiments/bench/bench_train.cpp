// One training step of MHA, GQA and MLA at the configs of the README (Benchmarks): forward,
// MSE against a fixed random target, backward, Adam (lr 1e-3), zero grads. Compare with
// scripts/bench_torch.py (`bench_train --benchmark_format=json > latte.json`, then
// `bench_torch.py --latte latte.json` prints a latte/PyTorch ratio table).
//
// Before the runs a table (on stderr, so JSON on stdout stays clean) lists each benchmark's sizes,
// parameter count, KV-cache bytes per token and matmul GFLOP per step. Each run then reports
// the median step, tokens (B*L per step) per second, FLOP per second, and peak MiB allocated
// during the step (docs/benchmarks.md reads an example).
// With a usable GPU the same steps also run on cuda:0 (configs small, medium and large; each
// step ends with a synchronize, so the wall time covers the GPU work).
//
//   bench_train [--no_flash] [--models mha,gqa,mla,mla_rope] [--configs tiny,small,medium,long,large,lm] [--precision f32,bf16]
//               [--B n --L n --D n --H n --d n --G n --r n] [--steps n]
//               [Google Benchmark flags, e.g. --benchmark_filter=small]
//
// Any size flag replaces the built-in configs by one config named "custom" (sizes not given come
// from `small`); --configs picks built-in ones by name, --models the modules. Each case times --steps steps (default 10), or as
// many as --benchmark_min_time allows when that is given (libbenchmark 1.7 takes plain seconds).
// A size a module refuses exits 2 before anything runs, naming the flags.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "backends/cpu/blas.h"
#include "core/autograd.h"
#include "core/cuda.h"
#include "experiments/memory.h"
#include "experiments/teacher_student.h"
#include "experiments/bench/bench_common.h"
#include "experiments/bench/lm_step.h"
#include "experiments/bench/timed_steps.h"
#include "nn/attention.h"
#include "nn/flash_attention.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/optim.h"
#include "ops/ops.h"

namespace {

using namespace latte;

struct Config {
    std::string name;
    int64_t B, L, D, H, d, G, r;
};
const Config kTiny{"tiny", 2, 16, 32, 4, 8, 2, 8};  // seconds for every module: docs and a first look
const Config kSmall{"small", 8, 128, 256, 8, 32, 2, 64};
const Config kMedium{"medium", 16, 256, 512, 8, 64, 2, 128};
const Config kLong{"long", 2, 2048, 512, 8, 64, 2, 128};
const Config kLarge{"large", 16, 1024, 1024, 16, 64, 4, 256};
// What runs without --configs: on the CPU small, medium and long; on a GPU small, medium, large.
const Config kCpuConfigs[] = {kSmall, kMedium, kLong};
const Config kGpuConfigs[] = {kSmall, kMedium, kLarge};
// --configs picks by name; long runs on the CPU only and large on a GPU only.
struct NamedConfig {
    Config c;
    bool cpu, gpu;
};
const NamedConfig kNamedConfigs[] = {
    {kTiny, true, true}, {kSmall, true, true}, {kMedium, true, true}, {kLong, true, false}, {kLarge, false, true}};

const NamedConfig* named_config(const std::string& name) {
    for (const NamedConfig& n : kNamedConfigs)
        if (n.c.name == name) return &n;
    return nullptr;
}

// Matmul FLOPs of one training step (forward + backward) of `model` at config c, from the shapes:
// the useful work, whatever the kernels do on top (the fused attention's backward recomputes
// QK^T). An (m, k) x (k, n) product is 2mkn FLOPs; its backward is one product of the same size
// per input that needs a gradient. x and y (B, L, D) need none, so the projections that read them
// (Q; K and V; MLA's DKV) cost 2x their forward, the others (O; MLA's UK and UV) 3x, and QK^T and
// PV 3x. With N = B*L tokens, P(m, n) = 2N·m·n and A = 4·B·H·L²·d (QK^T plus PV):
//   MHA  2·[P(D,Hd) + 2P(D,Hd)] + 3·P(Hd,D)                          + 3A
//   GQA  2·[P(D,Hd) + 2P(D,Gd)] + 3·P(Hd,D)                          + 3A
//   MLA  2·[P(D,Hd) + P(D,r)]   + 3·[2P(r,Hd) + P(Hd,D)]              + 3A
// Hand count, small MHA (B 8, L 128, D 256, H 8, d 32): P(D,Hd) = 2·1024·256·256 = 134,217,728
// = A, so 12 x 134,217,728 = 1,610,612,736 (GQA G 2: 1,207,959,552; MLA r 64: 1,342,177,280);
// main() checks the function against these numbers. Medium MHA: 25.8 GFLOP.
double train_step_flops(const Config& c, const std::string& model) {
    const double N = double(c.B) * double(c.L), Hd = double(c.H) * double(c.d), D = double(c.D);
    auto P = [N](double m, double n) { return 2 * N * m * n; };
    const double attention = 4 * double(c.B) * double(c.H) * double(c.L) * double(c.L) * double(c.d);
    double first = 0, inner = P(Hd, D);  // inner starts with the output projection
    if (model == "mha") first = P(D, Hd) + 2 * P(D, Hd);
    else if (model == "gqa") first = P(D, Hd) + 2 * P(D, double(c.G) * double(c.d));
    else {
        first = P(D, Hd) + P(D, double(c.r));
        inner += 2 * P(double(c.r), Hd);
    }
    return 2 * first + 3 * inner + 3 * attention;
}

bool check_flop_count() {
    const struct { const char* model; double flops; } hand[] = {
        {"mha", 1610612736.0}, {"gqa", 1207959552.0}, {"mla", 1342177280.0}};
    for (const auto& h : hand)
        if (train_step_flops(kSmall, h.model) != h.flops) {
            std::fprintf(stderr, "bench_train: FLOP count for %s small is %.0f, the hand count is %.0f\n", h.model,
                         train_step_flops(kSmall, h.model), h.flops);
            return false;
        }
    return true;
}

// The attention the modules take at config c on `device`, by nn/attention.cpp's rule: the fused
// kernel where the backend has one (and it is on); else chunked once the (B*H, L, L) float32
// scores pass attention_memory_limit(); else plain, the scores materialised.
std::string attention_path(const Config& c, Device device) {
    if (nn::flash_attention_enabled() && nn::has_flash_attention(device)) return "flash";
    const int64_t limit = nn::attention_memory_limit(), score_bytes = c.B * c.H * c.L * c.L * 4;
    return limit >= 0 && score_bytes > limit ? "chunked" : "plain";
}

void train_step(benchmark::State& state, const Config& c, const std::string& model, Device device,
                autocast::Precision precision) {
    Generator gen(0);
    auto module = experiments::make_student(model, {c.D, c.H, c.d, c.G, c.r}, gen);
    module->to(device);
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    Tensor x = randn({c.B, c.L, c.D}, gen, on_device), y = randn({c.B, c.L, c.D}, gen, on_device);
    Tensor target = randn({c.B, c.L, c.D}, gen, on_device);
    nn::Adam optimizer(module->parameters(), 1e-3);
    Backend& backend = backend_for(device);
    auto step = [&] {
        {
            const autocast::Guard guard(precision);  // the products; the loss and Adam stay float32
            Tensor loss = mse_loss(module->forward(x, y), target);
            loss.backward();
        }
        optimizer.step();
        optimizer.zero_grad();
        backend.synchronize();
    };
    bench::run_timed_steps(state, device, step, double(c.B * c.L));
    state.SetLabel("attention " + attention_path(c, device));  // bench_torch.py shows it beside PyTorch's
    state.counters["FLOP"] = benchmark::Counter(train_step_flops(c, model), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_train_step(benchmark::State& state, Config c, std::string model, Device device, autocast::Precision precision) {
    bench::guarded(state, [&] { train_step(state, c, model, device, precision); });
}

// --- command line -------------------------------------------------------------------------------

const char* kUsage = "bench_train [--no_flash] [--models mha,gqa,mla,mla_rope] [--configs tiny,small,...] [--precision f32,bf16] [--B n] [--L n] "
                     "[--D n] [--H n] [--d n] [--G n] [--r n] [--steps n] [--benchmark_...]";

void print_help() {
    std::printf(
        "bench_train: one training step (forward, MSE, backward, Adam, zero grads) of MHA, GQA and MLA.\n"
        "  --no_flash          the composed attention instead of the fused kernel\n"
        "  --models LIST       modules to run, comma separated: mha, gqa, mla, mla_rope (MLA with decoupled\n"
        "                      RoPE: the lm config only, which runs whichever of the four are named) (default all)\n"
        "  --configs LIST      built-in configs, comma separated: tiny (B 2, L 16, D 32, H 4, d 8, G 2, r 8),\n"
        "                      small, medium, long (CPU only), large (GPU only), lm (the language-model\n"
        "                      case); default small, medium, long on the CPU, small, medium, large on a GPU, lm\n"
        "  --precision LIST    f32 and/or bf16 (autocast: matmuls on bf16 inputs, float32 accumulation; cases\n"
        "                      named _bf16), comma separated (default f32)\n"
        "  --B --L --D --H --d --G --r N\n"
        "                      run one config named \"custom\" with these sizes (the others from small:\n"
        "                      B 8, L 128, D 256, H 8, d 32, G 2, r 64); H must be a multiple of G,\n"
        "                      and D = H*d for mla\n"
        "  --steps N           timed steps per case (default %lld), after 3 untimed warm-up steps\n"
        "Google Benchmark's flags:\n", (long long)bench::kDefaultSteps);
    benchmark::PrintDefaultHelp();
}

// The cross-attention step's modules among --models (mla_rope is the lm config's alone).
std::vector<std::string> cross_models(const std::vector<std::string>& models) {
    std::vector<std::string> out;
    for (const std::string& m : models)
        if (m != "mla_rope") out.push_back(m);
    return out;
}

struct Options {
    bool custom = false;
    Config config = kSmall;
    std::vector<std::string> models{"mha", "gqa", "mla", "mla_rope"};  // mla_rope: the lm config only
    bool models_given = false;                                          // --models named them
    std::vector<std::string> configs;  // --configs (empty: the default set)
    std::vector<std::string> precisions{"f32"};
    std::string filter;  // --benchmark_filter, to list only the benchmarks that will run
};

// Bytes one training step of `model` at config c takes on the CPU, roughly: the weights, their
// gradients, Adam's two moments and a temporary (5 copies), and the step's activations with their
// gradients and a temporary (3 x attention_activation_elements) beside the target. In doubles, so
// sizes whose products overflow int64 give a large number, not a wrong one.
double step_bytes(const Config& c, const std::string& model) {
    const double D = double(c.D), Hd = double(c.H) * double(c.d), Gd = double(c.G) * double(c.d), r = double(c.r);
    const double params = model == "mha"   ? 4 * D * Hd
                          : model == "gqa" ? 2 * D * Hd + 2 * D * Gd
                                           : 2 * D * Hd + D * r + 2 * r * Hd;
    const experiments::AttentionSizes a{double(c.B), double(c.L), double(c.L), D, double(c.H), Hd,
                                        model == "mla" ? r : 0.0};
    return 4 * (5 * params + 3 * experiments::attention_activation_elements(a, 4) + double(c.B) * double(c.L) * D);
}

// The custom config's sizes as the chosen modules need them: exits 2 naming the flags, before a
// module's own refusal could end the program inside a benchmark, and before sizes too large for
// the machine's memory start (or, multiplied out, overflow).
void check_custom(const bench::CommonFlags& flags, const Options& o) {
    const Config& c = o.config;
    const std::string sizes = "--D " + std::to_string(c.D) + " --H " + std::to_string(c.H) + " --d " + std::to_string(c.d);
    const std::string all_sizes = "--B " + std::to_string(c.B) + " --L " + std::to_string(c.L) + " " + sizes +
                                  " --G " + std::to_string(c.G) + " --r " + std::to_string(c.r);
    if (o.models_given && std::find(o.models.begin(), o.models.end(), "mla_rope") != o.models.end())
        bench::usage_error(flags, "--models mla_rope: only the lm config has it; a custom config runs mha, gqa and mla");
    if (c.H % c.G != 0)
        bench::usage_error(flags, "--H " + std::to_string(c.H) + " must be a multiple of --G " + std::to_string(c.G));
    const std::vector<std::string> models = cross_models(o.models);
    const bool mla = std::find(models.begin(), models.end(), "mla") != models.end();
    if (mla && c.D != c.H * c.d)
        bench::usage_error(flags, sizes + ": mla needs D = H*d (" + std::to_string(c.H * c.d) +
                                      "); pick sizes that fit or leave mla out with --models mha,gqa");
    for (const std::string& model : models) {
        try {
            experiments::check_memory("bench_train " + model, step_bytes(c, model),
                                      "weights, gradients, Adam state and one step's activations, roughly");
        } catch (const Error& e) {
            bench::usage_error(flags, all_sizes + ": " + e.what());
        }
    }
    for (const std::string& model : models) {  // any other refusal, named as the module words it
        try {
            Generator gen(0);
            experiments::make_student(model, {c.D, c.H, c.d, c.G, c.r}, gen);
        } catch (const Error& e) {
            bench::usage_error(flags, all_sizes + ": " + model + ": " + e.what());
        }
    }
}

// Takes bench_train's own flags out of argv (Google Benchmark rejects flags it does not know).
Options parse_own_flags(const bench::CommonFlags& flags, int& argc, char** argv) {
    Options o;
    o.config.name = "custom";
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--no_flash") {
            nn::set_flash_attention_enabled(false);
            continue;
        }
        if (arg.rfind("--benchmark_filter=", 0) == 0) o.filter = arg.substr(19);
        std::string flag = arg, value;
        bool has_value = false;
        if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            flag = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            has_value = true;
        }
        int64_t Config::*size = nullptr;
        if (flag == "--B") size = &Config::B;
        else if (flag == "--L") size = &Config::L;
        else if (flag == "--D") size = &Config::D;
        else if (flag == "--H") size = &Config::H;
        else if (flag == "--d") size = &Config::d;
        else if (flag == "--G") size = &Config::G;
        else if (flag == "--r") size = &Config::r;
        else if (flag != "--models" && flag != "--configs" && flag != "--precision") {
            rest.push_back(argv[i]);
            continue;
        }
        if (!has_value) {
            if (i + 1 >= argc) bench::usage_error(flags, flag + " needs a value");
            value = argv[++i];
        }
        if (size) {
            o.config.*size = bench::parse_positive(flags, flag, value, 1 << 20);
            o.custom = true;
            continue;
        }
        // --models, --configs or --precision: names, comma separated.
        const bool models = flag == "--models";
        if (flag == "--precision") {
            o.precisions.clear();
            for (size_t start = 0;;) {
                const size_t comma = value.find(',', start);
                const std::string p = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                if (p != "f32" && p != "bf16")
                    bench::usage_error(flags, "--precision: unknown precision '" + p + "' (expected f32 or bf16, comma separated)");
                std::string why;
                if (p == "bf16" && !autocast::bf16_available(Device::cpu(), &why))
                    bench::usage_error(flags, "--precision bf16: " + why);
                if (std::find(o.precisions.begin(), o.precisions.end(), p) == o.precisions.end()) o.precisions.push_back(p);
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
            continue;
        }
        std::vector<std::string>& list = models ? o.models : o.configs;
        if (models) o.models_given = true;
        list.clear();
        size_t start = 0;
        while (true) {
            const size_t comma = value.find(',', start);
            const std::string m = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            const bool known = models ? m == "mha" || m == "gqa" || m == "mla" || m == "mla_rope"
                                      : m == "lm" || named_config(m) != nullptr;
            if (!known)
                bench::usage_error(flags, models ? "--models: unknown model '" + m + "' (expected mha, gqa, mla or mla_rope, comma separated)"
                                                 : "--configs: unknown config '" + m + "' (expected tiny, small, medium, "
                                                   "long, large or lm, comma separated)");
            if (std::find(list.begin(), list.end(), m) == list.end()) list.push_back(m);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    if (o.custom && !o.configs.empty())
        bench::usage_error(flags, "--configs picks built-in configs and the size flags make one named custom: give "
                                  "one or the other");
    if (o.custom) check_custom(flags, o);
    argc = int(rest.size());
    for (int i = 0; i < argc; ++i) argv[i] = rest[size_t(i)];
    argv[argc] = nullptr;
    return o;
}

// Google Benchmark's filter (an extended regex; a leading '-' negates), to list what will run.
bool selected(const std::string& name, const std::string& filter) {
    if (filter.empty() || filter == "all") return true;
    const bool negate = filter[0] == '-';
    try {
        const bool match = std::regex_search(name, std::regex(negate ? filter.substr(1) : filter, std::regex::extended));
        return match != negate;
    } catch (const std::regex_error&) {
        return true;  // Google Benchmark reports the bad pattern
    }
}

// The OpenBLAS kernels latte runs (bench_torch.py compares them with PyTorch's); loads OpenBLAS.
void add_blas_context() {
    try {
        const cpu::BlasInfo info = cpu::blas_info();
        bench::add_context("openblas_core", info.core);
        bench::add_context("openblas_library", info.library);
    } catch (const Error& e) {
        bench::add_context("openblas_core", std::string("unavailable: ") + e.what());
    }
}

struct Entry {
    std::string name;
    Config c;
    std::string model;
    Device device;
};

void print_table(const std::vector<Entry>& entries, const std::string& filter) {
    std::fprintf(stderr, "%-24s %4s %6s %6s %4s %4s %4s %5s %11s %12s %11s %9s\n", "benchmark", "B", "L", "D", "H", "d",
                 "G", "r", "params", "KV B/token", "GFLOP/step", "attention");
    int shown = 0;
    for (const Entry& e : entries) {
        if (!selected(e.name, filter)) continue;
        const Config& c = e.c;
        Generator gen(0);
        auto module = experiments::make_student(e.model, {c.D, c.H, c.d, c.G, c.r}, gen);
        const int64_t kv_bytes = module->kv_cache_per_position() * int64_t(dtype_size(module->parameters()[0].dtype()));
        std::fprintf(stderr, "%-24s %4lld %6lld %6lld %4lld %4lld %4lld %5lld %11lld %12lld %11.4g %9s\n",
                     e.name.c_str(), (long long)c.B, (long long)c.L, (long long)c.D, (long long)c.H, (long long)c.d,
                     (long long)c.G, (long long)c.r, (long long)module->num_parameters(), (long long)kv_bytes,
                     train_step_flops(c, e.model) / 1e9, attention_path(c, e.device).c_str());
        ++shown;
    }
    if (shown)
        std::fprintf(stderr,
                     "float32 (_bf16: autocast). KV B/token: bytes a decoder caches per position (MHA 2Hd, GQA 2Gd, MLA r numbers).\n"
                     "attention: flash (fused kernel), chunked (blocks of query rows) or plain (scores materialised).\n"
                     "GFLOP/step: useful matmul FLOPs of forward + backward (x, y need no gradient). Per run below:\nmedian = the "
                     "median step;\ntokens = B*L per second; FLOP = per second; peak_MiB = peak allocated during a step "
                     "beyond\nweights and Adam state; peak_total_MiB includes them.\n\n");
}

std::vector<Entry> register_all(const bench::CommonFlags& flags, const Options& o) {
    std::vector<Entry> entries;
    auto add = [&](const Config& c, const std::string& model, Device device) {
        for (const std::string& p : o.precisions) {
            if (p == "bf16" && !device.is_cpu()) continue;  // no bf16 products on CUDA yet
            const std::string name = "train_" + model + "_" + c.name + (device.is_cpu() ? "" : "_cuda") +
                                     (p == "bf16" ? "_bf16" : "");
            // No MinTime here: it would override --benchmark_min_time.
            bench::apply_steps(benchmark::RegisterBenchmark(name.c_str(), BM_train_step, c, model, device,
                                                            autocast::parse_precision(p, "bench_train"))
                                   ->Unit(benchmark::kMillisecond)
                                   ->UseRealTime(),
                               flags);
            entries.push_back({name, c, model, device});
        }
    };
    const bool gpu = cuda::is_available();
    if (o.custom) {
        for (const std::string& model : cross_models(o.models)) add(o.config, model, Device::cpu());
        if (gpu)
            for (const std::string& model : cross_models(o.models)) add(o.config, model, Device::cuda(0));
        const Config& c = o.config;
        bench::add_context("custom_config", "B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) +
                                                         " D=" + std::to_string(c.D) + " H=" + std::to_string(c.H) +
                                                         " d=" + std::to_string(c.d) + " G=" + std::to_string(c.G) +
                                                         " r=" + std::to_string(c.r));
        return entries;
    }
    const std::vector<Device> devices = gpu ? std::vector<Device>{Device::cpu(), Device::cuda(0)}
                                            : std::vector<Device>{Device::cpu()};
    // The language-model case (lm_step.h): train_mha_lm ... train_mla_rope_lm, those --models names.
    auto add_lm = [&] {
        for (const Device device : devices)
            for (const std::string& kind : o.models)
                for (const std::string& p : o.precisions) {
                    if (p == "bf16" && !device.is_cpu()) continue;
                    const std::string name = "train_" + kind + "_lm" + (device.is_cpu() ? "" : "_cuda") +
                                             (p == "bf16" ? "_bf16" : "");
                    bench::apply_steps(benchmark::RegisterBenchmark(name.c_str(), bench::BM_lm_step, kind, device,
                                                                    autocast::parse_precision(p, "bench_train"))
                                           ->Unit(benchmark::kMillisecond)
                                           ->UseRealTime(),
                                       flags);
                }
    };
    const std::vector<std::string> cross = cross_models(o.models);
    if (o.configs.empty()) {
        for (const Config& c : kCpuConfigs)
            for (const std::string& model : cross) add(c, model, Device::cpu());
        if (gpu)
            for (const Config& c : kGpuConfigs)
                for (const std::string& model : cross) add(c, model, Device::cuda(0));
        add_lm();
        return entries;
    }
    for (const Device device : devices)
        for (const std::string& name : o.configs) {
            const NamedConfig* n = named_config(name);
            if (n && (device.is_cpu() ? n->cpu : n->gpu))
                for (const std::string& model : cross) add(n->c, model, device);
        }
    if (std::find(o.configs.begin(), o.configs.end(), "lm") != o.configs.end()) add_lm();
    return entries;
}

}  // namespace

int main(int argc, char** argv) {
    if (!check_flop_count()) return 1;
    const bench::CommonFlags flags = bench::take_common_flags("bench_train", kUsage, argc, argv);  // --steps
    const Options options = parse_own_flags(flags, argc, argv);  // --no_flash, --models, sizes; exit 2 on a bad one
    bench::initialize(flags, argc, argv, print_help);
    const std::vector<Entry> entries = register_all(flags, options);
    const auto& configs = options.configs;
    const bool lm = std::find(configs.begin(), configs.end(), "lm") != configs.end();
    const auto& models = options.models;
    if (!configs.empty() && !lm && options.models_given &&
        std::find(models.begin(), models.end(), "mla_rope") != models.end())
        bench::usage_error(flags, "--models: mla_rope runs in the lm config only; add lm to --configs");
    if (!configs.empty() && entries.empty() && !lm)
        bench::usage_error(flags, "--configs: nothing to run here (long runs on the CPU only, large on a GPU only, "
                                  "and no GPU is usable)");
    add_blas_context();
    bench::add_context("flash_attention", nn::flash_attention_enabled() ? "on" : "off");
    bench::add_context("cuda_tf32", cuda::allow_tf32() ? "on" : "off");  // float32 matmuls on a GPU
    print_table(entries, options.filter);
    return bench::run_benchmarks(flags);
}
