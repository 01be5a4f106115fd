// The inference experiments behind `latte convert`, `latte absorb` and `latte decode` (and the
// demo's checks): each runs one claim of the spec's Parts 10-14 and reports what it measured.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"

namespace latte::experiments {

// GQA -> MLA, checked on seeded random inputs (cross-attention and causal self-attention).
struct ConversionCheck {
    std::shared_ptr<nn::MultiHeadLatentAttention> mla;
    int64_t rank_needed = 0;    // numerical rank of [W_K; W_V]
    double relative_error = 0;  // largest of the checks, in the module's dtype
};
ConversionCheck convert_and_check(const nn::GroupedQueryAttention& gqa, int64_t rank = 0, uint64_t seed = 0);

// `latte convert`: a GQA .safetensors in, an MLA .safetensors out (same dtype). The conversion
// runs in float64; the check runs in float64 and again in the file's dtype. A non-finite check
// throws and writes nothing.
struct ConvertReport {
    ConversionCheck check64;
    double relative_error_saved = 0;  // after casting to the file's dtype
    DType dtype = DType::Float32;
    int64_t gqa_cache = 0, mla_cache = 0;  // numbers per position
};
ConvertReport convert_checkpoint(const std::string& in, const std::string& out, int64_t rank = 0);

// The check of a conversion before anything is written: a non-finite error fails, and so does a
// float64 error above kExactConversionTolerance when the latent rank is at least the rank the
// GQA needs (the conversion is then exact, so such an error means a wrong model). A smaller rank
// is lossy by request and only reported. Throws latte::Error naming `out`.
constexpr double kExactConversionTolerance = 1e-9;
void check_conversion(const std::string& what, double error64, double error_saved, DType saved_dtype, int64_t rank,
                      int64_t rank_needed, const std::string& out);

// Part 13: vanilla MHA (W_K = W_UK W_DKV, W_V = W_UV W_DKV) against the absorbed MLA path, with
// unscaled randn weights and inputs.
struct AbsorbCase {
    int64_t D = 1024, H = 32, r = 50, B = 32, L1 = 100, L2 = 300;
    uint64_t seed = 0;
    int repeats = 2;  // timed runs of each path; the fastest is reported
    Device device = Device::cpu();
};
// The case's models and inputs on c.device, all drawn from c.seed: the MLA with unscaled randn
// weights, and the vanilla MHA with W_K = W_UK W_DKV, W_V = W_UV W_DKV and the same W_Q, W_O.
struct Part13Models {
    std::shared_ptr<nn::MultiHeadAttention> vanilla;
    std::shared_ptr<nn::MultiHeadLatentAttention> mla;
    Tensor x, y;  // (B, L1, D), (B, L2, D)
};
Part13Models make_part13_models(const AbsorbCase& c, DType dtype);

struct AbsorbGflop {
    double vanilla = 0, precomputed = 0, factored = 0;  // multiply-adds x 2, from the shapes
};
// The case's forward work: projections plus both attention products, for each path.
AbsorbGflop absorb_gflop(const AbsorbCase& c);

struct AbsorbReport {
    double error_precomputed = 0, error_factored = 0;  // relative to vanilla
    double vanilla_seconds = 0, precomputed_seconds = 0, factored_seconds = 0;
    AbsorbGflop gflop;
};
// Both absorbed forms (nn::AbsorbedForm) against vanilla.
AbsorbReport run_absorb_case(const AbsorbCase& c, DType dtype);

// Part 14: `steps` tokens per sequence decoded one at a time (on the module's device),
// optionally checked against the module's full causal forward over the same tokens.
struct DecodeReport {
    int64_t numbers_per_position = 0;  // per sequence
    int64_t bytes_per_position = 0;    // per sequence
    int64_t total_bytes = 0;           // all sequences, after the last step
    int64_t tokens = 0;                // batch * steps
    double seconds = 0;
    bool checked = false;              // relative_error holds the check (it may be nan)
    double relative_error = -1;        // -1 when not checked
};
DecodeReport run_decode(const nn::Attention& module, int64_t batch, int64_t steps, uint64_t seed, bool check);

}  // namespace latte::experiments
