// `latte convert`, `latte absorb` and `latte decode`: the inference experiments as commands.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "core/atomic_file.h"
#include "experiments/cli.h"
#include "experiments/commands.h"
#include "experiments/inference.h"
#include "experiments/lm_convert.h"
#include "experiments/memory.h"
#include "nn/checkpoint.h"
#include "nn/conversion.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

// A rough upper bound, in bytes, of one dtype's Part 13 run: the MLA's and the vanilla MHA's
// weights (r*D*3 + 6*D*D), the precomputed reduced matrices (2*H*r*D), the inputs and the three
// outputs, and the larger path's activations (a vanilla forward's, plus the absorbed path's
// H*r-wide queries and head outputs and its latent).
double absorb_bytes(const AbsorbCase& c, size_t dtype_bytes) {
    const double D = double(c.D), H = double(c.H), r = double(c.r), B = double(c.B), L1 = double(c.L1),
                 L2 = double(c.L2);
    const AttentionSizes vanilla{B, L1, L2, D, H, D, 0};
    const double weights = 3 * r * D + 6 * D * D + 2 * H * r * D;
    const double activations = attention_activation_elements(vanilla, dtype_bytes) + 2 * B * L1 * H * r + B * L2 * r;
    return double(dtype_bytes) * (weights + 3 * B * L1 * D + activations);
}

// Part 10 exactly: W_M_GQA = randn(4, 24), tiled 6 times, factored by SVD; in both dtypes.
void print_part10(uint64_t seed) {
    for (DType dtype : {DType::Float64, DType::Float32}) {
        Generator gen(seed);
        Tensor w = randn({4, 24}, gen, TensorOptions{}.with_dtype(dtype));
        const nn::LatentFactors f = nn::gqa_to_mla(w);
        std::printf("%s: shape of W_UM_MLA: %s, shape of W_DKV_MLA: %s, mean-squared error: %.3e\n",
                    dtype_name(dtype), shape_str(f.W_UM.shape()).c_str(), shape_str(f.W_DKV.shape()).c_str(), f.mse);
        if (dtype == DType::Float64)
            std::printf("Part 6: rank(W_M_GQA) = %lld, rank(tiled) = %lld\n", (long long)matrix_rank(w),
                        (long long)matrix_rank(repeat(w, {6, 1})));
    }
}

// The --tolerance flag of absorb and decode: a relative error above it (or a nan) makes the
// command exit with code 1. 0 means the dtype's default. Read before anything runs.
double tolerance_flag(const cli::Args& args) {
    const double value = args.number("tolerance");
    LATTE_CHECK(value >= 0, "latte ", args.command(), ": --tolerance must be 0 (the dtype's default) or positive, got ",
                args.str("tolerance"));
    return value;
}

double tolerance_for(double flag, DType dtype, double f32_default, double f64_default) {
    return flag > 0 ? flag : dtype == DType::Float64 ? f64_default : f32_default;
}

// Prints a failed check on stderr; true when `error` is within `tolerance`.
bool within(const char* command, const std::string& what, double error, double tolerance) {
    if (error <= tolerance) return true;  // false for nan too
    std::fprintf(stderr, "latte %s: FAILED: %s relative error %.2e is above the tolerance %g\n", command, what.c_str(),
                 error, tolerance);
    return false;
}

}  // namespace

int cmd_convert(int argc, char** argv, int first) {
    cli::Args args("convert",
                   "Converts a GQA checkpoint into the MLA that computes the same function (one shared latent of\n"
                   "rank r = 2*G*d from the SVD of [W_K; W_V]), checks the two agree, and saves the MLA.",
                   {cli::file_flag("in", "GQA weights .safetensors (latte train --model gqa --save, or latte lm "
                                        "--attention gqa --rope off --save)"),
                    cli::file_flag("out", "MLA weights .safetensors to write"),
                    {"rank", "0", "latent rank r; 0 = min(2*G*d, D), always exact"},
                    {"rope-dim", "0", "a language model with RoPE (G = 1): keep RoPE on this many dims per head (the "
                                      "fastest-turning pairs) and compress the rest (partial RoPE; not exact)"},
                    {"part10", "false", "instead: the spec's Part 10 on randn(4, 24), with Part 6's rank check", true},
                    {"seed", "0", "random seed for --part10"}},
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    if (args.on("part10")) {
        for (const char* flag : {"in", "out", "rank", "rope-dim"}) args.refuse(flag, "with --part10");
        print_part10(static_cast<uint64_t>(args.integer("seed", 0)));
        return 0;
    }
    args.refuse("seed", "without --part10 (the conversion is deterministic)");
    LATTE_CHECK(!args.str("in").empty() && !args.str("out").empty(), "latte convert: --in and --out are required");
    const int64_t rank = args.integer("rank", 0);
    cli::check_output_file(args, "out");
    cli::check_distinct(args, "out", "in");
    // A whole language model (latte lm --save) converts layer by layer: experiments/lm_convert.h.
    const int64_t rope_dim = args.integer("rope-dim", 0);
    if (is_lm_file(args.str("in"))) return run_lm_convert(args.str("in"), args.str("out"), rank, rope_dim);
    args.refuse("rope-dim", "for an attention module (only a language model with RoPE converts by partial RoPE)");
    const ConvertReport r = convert_checkpoint(args.str("in"), args.str("out"), rank);
    const auto& mla = *r.check64.mla;
    std::printf("converted GQA -> MLA: D=%lld H=%lld d=%lld, latent rank r=%lld (rank of [W_K; W_V]: %lld)\n",
                (long long)mla.input_width(), (long long)mla.heads(), (long long)mla.head_dim(),
                (long long)mla.rank(), (long long)r.check64.rank_needed);
    std::printf("KV cache per position: GQA %lld numbers, MLA %lld numbers\n", (long long)r.gqa_cache,
                (long long)r.mla_cache);
    std::printf("check: MLA vs GQA outputs on random inputs (cross and causal self-attention), relative error "
                "%.2e in float64, %.2e in %s\n",
                r.check64.relative_error, r.relative_error_saved, dtype_name(r.dtype));
    std::printf("wrote %s\n", args.str("out").c_str());
    return 0;
}

int cmd_absorb(int argc, char** argv, int first) {
    cli::Args args("absorb",
                   "The spec's Part 13: vanilla MHA with W_K = W_UK W_DKV, W_V = W_UV W_DKV against the absorbed MLA\n"
                   "path (all heads attend one shared latent), unscaled randn weights and inputs. Prints the\n"
                   "relative error and the time of each path.",
                   {{"D", "1024", "width"},
                    {"H", "32", "heads (d = D/H)"},
                    {"r", "50", "latent rank"},
                    {"batch", "32", "B"},
                    {"L1", "100", "query length"},
                    {"L2", "300", "key length"},
                    {"seed", "0", "random seed"},
                    {"repeats", "2", "timed runs of each path (the fastest is shown)"},
                    {"dtype", "both", "f32, f64 or both"},
                    {"device", "cpu", "cpu, cuda or cuda:N"},
                    {"tolerance", "0",
                     "exit with code 1 when a relative error is above this; 0: 1e-3 in f32, 1e-9 in f64"}},
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    AbsorbCase c;
    c.D = args.integer("D", 1);
    c.H = args.integer("H", 1);
    LATTE_CHECK(c.D % c.H == 0, "latte absorb: --D ", c.D, " is not a multiple of --H ", c.H, " (d = D/H)");
    c.r = args.integer("r", 1);
    // W_K = W_UK W_DKV has rank at most D whatever r is: r > D only adds work.
    LATTE_CHECK(c.r <= c.D, "latte absorb: --r ", c.r, " exceeds --D ", c.D,
                " (the latent W_DKV x has rank at most D: a wider latent adds nothing)");
    c.B = args.integer("batch", 1);
    c.L1 = args.integer("L1", 1);
    c.L2 = args.integer("L2", 1);
    c.seed = static_cast<uint64_t>(args.integer("seed", 0));
    c.repeats = static_cast<int>(args.integer("repeats", 1, 1000000));
    c.device = cli::device(args);
    const double tolerance = tolerance_flag(args);
    std::vector<DType> dtypes;
    if (args.str("dtype") == "both") dtypes = {DType::Float32, DType::Float64};
    else dtypes = {cli::dtype(args)};
    if (!c.device.is_cuda()) check_memory("latte absorb", absorb_bytes(c, dtype_size(dtypes.back())),
                                          "both models, reduced matrices, inputs, outputs and activations, roughly");
    std::printf("Part 13: D=%lld H=%lld d=%lld r=%lld, B=%lld L1=%lld L2=%lld, on %s\n", (long long)c.D,
                (long long)c.H, (long long)(c.D / c.H), (long long)c.r, (long long)c.B, (long long)c.L1,
                (long long)c.L2, c.device.str().c_str());
    const AbsorbGflop gflop = absorb_gflop(c);
    std::printf("work: vanilla %.1f GFLOP, absorbed %.1f GFLOP precomputed (the spec's W_Q_hat, W_O_hat), "
                "%.1f GFLOP factored\n",
                gflop.vanilla, gflop.precomputed, gflop.factored);
    std::printf("%-8s %12s %12s %12s %12s %12s\n", "dtype", "vanilla", "precomputed", "rel. error", "factored",
                "rel. error");
    bool ok = true;
    for (DType dtype : dtypes) {
        const AbsorbReport r = run_absorb_case(c, dtype);
        std::printf("%-8s %11.3fs %11.3fs %12.2e %11.3fs %12.2e\n", dtype_name(dtype), r.vanilla_seconds,
                    r.precomputed_seconds, r.error_precomputed, r.factored_seconds, r.error_factored);
        std::fflush(stdout);  // the table before any failure on stderr
        const double tol = tolerance_for(tolerance, dtype, 1e-3, 1e-9);
        ok &= within("absorb", std::string(dtype_name(dtype)) + " precomputed", r.error_precomputed, tol);
        ok &= within("absorb", std::string(dtype_name(dtype)) + " factored", r.error_factored, tol);
    }
    return ok ? 0 : 1;
}

namespace {

// A rough upper bound, in bytes, of `latte decode`: the weights twice (module and the absorbed
// path's reduced matrices), the tokens, the outputs (the list and their concatenation), the
// whole cache, and with the check one full causal forward. 0 for a config whose sizes it cannot
// read (loading the file then reports why).
double decode_bytes(const std::map<std::string, std::string>& config, int64_t batch, int64_t steps, size_t dtype_bytes,
                    bool check) {
    double params = 0, width = 0, latent = 0;
    try {
        for (const auto& [name, shape] : nn::attention_parameter_shapes(config, "latte decode")) {
            params += double(shape_numel(shape));
            if (name == "W_Q.weight") width = double(shape[0]);
            if (name == "W_DKV.weight") latent = double(shape[0]);
        }
    } catch (const Error&) {
        return 0;
    }
    const double B = double(batch), L = double(steps), D = double(std::stoll(config.at(config.count("D") ? "D" : "D_1")));
    const double tokens = B * L * D, cache = B * L * (latent > 0 ? latent : 2 * width);
    const AttentionSizes full{B, L, L, D, double(std::stoll(config.at("H"))), width, latent};
    return double(dtype_bytes) *
           (2 * params + 3 * tokens + cache + (check ? attention_activation_elements(full, dtype_bytes) : 0));
}

}  // namespace

int cmd_decode(int argc, char** argv, int first) {
    cli::Args args("decode",
                   "Autoregressive decoding, one token per step, of random tokens through causal self-attention:\n"
                   "MHA/GQA keep a K/V cache (2*G*d numbers per position), MLA a latent cache (r numbers) read by\n"
                   "the absorbed path. Prints cache sizes, tokens/s, and checks the outputs against the full\n"
                   "causal forward.",
                   {{"model", "mla", "mha, gqa or mla (ignored with --weights)"},
                    cli::file_flag("weights", "a .safetensors module to decode with instead of random weights"),
                    {"D", "256", "width"},
                    {"H", "8", "heads"},
                    {"d", "32", "head dim"},
                    {"G", "2", "K/V heads of GQA"},
                    {"r", "64", "latent rank of MLA"},
                    {"batch", "8", "sequences decoded together"},
                    {"steps", "256", "tokens per sequence"},
                    {"seed", "0", "random seed"},
                    {"dtype", "f32", "f32 or f64"},
                    {"device", "cpu", "cpu, cuda or cuda:N"},
                    {"no-check", "false", "skip the comparison with the full forward", true},
                    {"tolerance", "0",
                     "exit with code 1 when the check's relative error is above this; 0: 1e-4 in f32, 1e-10 in f64"}},
                   argc, argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    // Every flag is checked, and the run's memory estimated, before anything is built or printed.
    const DType dtype = cli::dtype(args);
    const Device device = cli::device(args);
    const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 0));
    const int64_t batch = args.integer("batch", 1), steps = args.integer("steps", 1);
    if (args.on("no-check")) args.refuse("tolerance", "with --no-check");
    const double tolerance = tolerance_for(tolerance_flag(args), dtype, 1e-4, 1e-10);
    std::map<std::string, std::string> config;
    if (!args.str("weights").empty()) {
        for (const char* flag : {"model", "D", "H", "d", "G", "r"})
            args.refuse(flag, "with --weights (the file gives the module and its sizes)");
        config = nn::read_safetensors_header(args.str("weights")).metadata;
    } else {
        const std::string kind = args.str("model");
        LATTE_CHECK(kind == "mha" || kind == "gqa" || kind == "mla", "latte decode: --model must be mha, gqa or mla, got '",
                    kind, "'");
        if (kind != "gqa") args.refuse("G", "with --model " + kind + " (only GQA has K/V head groups)");
        if (kind != "mla") args.refuse("r", "with --model " + kind + " (only MLA has a latent rank)");
        const std::string D = std::to_string(args.integer("D", 1)), H = std::to_string(args.integer("H", 1)),
                          d = std::to_string(args.integer("d", 1));
        config = {{"module", kind}, {"D", D}, {"D_1", D}, {"D_2", D}, {"H", H}, {"d", d}, {"D_qk", d}, {"D_v", d},
                  {"G", std::to_string(args.integer("G", 1))}, {"r", std::to_string(args.integer("r", 1))}};
        nn::attention_parameter_shapes(config, "latte decode: flags");
    }
    if (!device.is_cuda())
        check_memory("latte decode", decode_bytes(config, batch, steps, dtype_size(dtype), !args.on("no-check")),
                     "weights, tokens, cache, outputs and the checking forward, roughly");
    Generator gen(seed);
    std::shared_ptr<nn::Attention> module = args.str("weights").empty() ? nn::make_attention(config, gen, dtype)
                                                                        : nn::load_attention(args.str("weights"), dtype);
    module->to(device);
    config = module->config();
    const DecodeReport r = run_decode(*module, batch, steps, seed + 1, !args.on("no-check"));
    std::printf("decode %s, batch %lld, %lld steps (%s on %s)\n", config.at("module").c_str(),
                (long long)args.integer("batch"), (long long)args.integer("steps"), dtype_name(dtype),
                module->device().str().c_str());
    std::printf("cache: %lld numbers = %lld bytes per position per sequence; %lld bytes in all after the last step\n",
                (long long)r.numbers_per_position, (long long)r.bytes_per_position, (long long)r.total_bytes);
    std::printf("speed: %.0f tokens/s (%lld tokens in %.3fs)\n", double(r.tokens) / r.seconds, (long long)r.tokens,
                r.seconds);
    if (r.checked) {
        std::printf("check: decoded outputs vs the full causal forward, relative error %.2e\n", r.relative_error);
        LATTE_CHECK(std::isfinite(r.relative_error), "latte decode: the check against the full causal forward gave ",
                    "relative error ", r.relative_error, " (non-finite outputs)");
        std::fflush(stdout);
        if (!within("decode", "decoded outputs vs the full causal forward:", r.relative_error, tolerance)) return 1;
    }
    return 0;
}

}  // namespace latte::experiments
