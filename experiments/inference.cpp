#include "experiments/inference.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/autograd.h"
#include "core/backend.h"
#include "nn/absorbed.h"
#include "nn/checkpoint.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/mha.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Waits for queued GPU work, so a wall-clock time covers it.
void sync(Device device) { backend_for(device).synchronize(); }

// The fastest of `repeats` runs of f, in seconds; `out` keeps the last result.
template <class F>
double fastest(int repeats, Device device, Tensor& out, F&& f) {
    double best = 1e300;
    for (int i = 0; i < std::max(repeats, 1); ++i) {
        sync(device);
        const auto start = std::chrono::steady_clock::now();
        out = f();
        sync(device);
        best = std::min(best, seconds_since(start));
    }
    return best;
}

// Largest relative error of `b` against `a` over a cross-attention and a causal self-attention case.
double largest_difference(const nn::Attention& a, const nn::Attention& b, uint64_t seed) {
    NoGradGuard no_grad;
    Generator gen(seed);
    const TensorOptions options = TensorOptions{}.with_dtype(a.parameters().front().dtype()).with_device(a.device());
    const int64_t D = a.input_width();
    Tensor x = randn({2, 6, D}, gen, options), y = randn({2, 10, D}, gen, options);
    return std::max(relative_error(b.forward(x, y), a.forward(x, y)),
                    relative_error(b.forward(y, y, true), a.forward(y, y, true)));
}

}  // namespace

ConversionCheck convert_and_check(const nn::GroupedQueryAttention& gqa, int64_t rank, uint64_t seed) {
    ConversionCheck c;
    c.mla = nn::to_mla(gqa, rank);
    c.rank_needed = nn::rank_needed(gqa);
    c.relative_error = largest_difference(gqa, *c.mla, seed);
    return c;
}

void check_conversion(const std::string& what, double error64, double error_saved, DType saved_dtype, int64_t rank,
                      int64_t rank_needed, const std::string& out) {
    // A nan or inf check is a failed check (0/0 from all-zero weights counts too).
    LATTE_CHECK(std::isfinite(error64) && std::isfinite(error_saved), "latte convert: the check of ", what,
                " gave relative error ", error64, " in float64 and ", error_saved, " in ", dtype_name(saved_dtype),
                "; nothing written to ", out);
    LATTE_CHECK(rank < rank_needed || error64 <= kExactConversionTolerance, "latte convert: the check of ", what,
                " gave relative error ", error64, " in float64, above ", kExactConversionTolerance,
                " although latent rank ", rank, " covers the rank ", rank_needed,
                " that [W_K; W_V] needs, so the conversion should be exact; nothing written to ", out);
}

ConvertReport convert_checkpoint(const std::string& in, const std::string& out, int64_t rank) {
    const nn::SafetensorsHeader header = nn::read_safetensors_header(in);
    const auto kind = header.metadata.find("module");
    LATTE_CHECK(kind != header.metadata.end() && kind->second == "gqa", "latte convert: ", in,
                " does not hold a GQA module (its metadata says module=",
                kind == header.metadata.end() ? "nothing" : kind->second, ")");
    LATTE_CHECK(!header.tensors.empty(), "latte convert: ", in, " holds no tensors");
    auto module = nn::load_attention(in, DType::Float64);
    auto& gqa = dynamic_cast<nn::GroupedQueryAttention&>(*module);
    ConvertReport report;
    report.dtype = header.tensors.front().dtype;
    report.check64 = convert_and_check(gqa, rank);
    report.gqa_cache = gqa.kv_cache_per_position();
    report.mla_cache = report.check64.mla->kv_cache_per_position();
    // What is saved is in the file's dtype: check that too.
    gqa.to(report.dtype);
    report.check64.mla->to(report.dtype);
    report.relative_error_saved = largest_difference(gqa, *report.check64.mla, 1);
    check_conversion("the MLA against the GQA", report.check64.relative_error, report.relative_error_saved,
                     report.dtype, report.check64.mla->rank(), report.check64.rank_needed, out);
    for (const auto& [name, p] : report.check64.mla->named_parameters())
        nn::check_finite(p, "latte convert: the converted MLA's tensor '" + name + "'");
    // The file gets exactly the module that passed this second check.
    nn::save(*report.check64.mla, out);
    return report;
}

Part13Models make_part13_models(const AbsorbCase& c, DType dtype) {
    LATTE_CHECK(c.H > 0 && c.D % c.H == 0 && c.r > 0 && c.B > 0 && c.L1 > 0 && c.L2 > 0,
                "latte absorb: need D divisible by H and positive sizes, got D=", c.D, " H=", c.H, " r=", c.r);
    NoGradGuard no_grad;
    const int64_t D = c.D, H = c.H, d = D / H, r = c.r;
    const TensorOptions options = TensorOptions{}.with_dtype(dtype);
    Generator gen(c.seed);
    Tensor W_DKV = randn({r, D}, gen, options), W_UK = randn({D, r}, gen, options), W_UV = randn({D, r}, gen, options);
    Tensor W_Q = randn({D, D}, gen, options), W_O = randn({D, D}, gen, options);
    const TensorOptions on_device = TensorOptions(options).with_device(c.device);
    Part13Models m;
    m.x = randn({c.B, c.L1, D}, gen, on_device);
    m.y = randn({c.B, c.L2, D}, gen, on_device);
    m.vanilla = std::make_shared<nn::MultiHeadAttention>(D, D, d, d, H, gen, dtype);
    m.vanilla->W_Q->set_weight(W_Q);
    m.vanilla->W_K->set_weight(matmul(W_UK, W_DKV));
    m.vanilla->W_V->set_weight(matmul(W_UV, W_DKV));
    m.vanilla->W_O->set_weight(W_O);
    m.mla = std::make_shared<nn::MultiHeadLatentAttention>(D, H, d, r, gen, dtype);
    m.mla->W_DKV->set_weight(W_DKV);
    m.mla->W_UK->set_weight(W_UK);
    m.mla->W_UV->set_weight(W_UV);
    m.mla->W_Q->set_weight(W_Q);
    m.mla->W_O->set_weight(W_O);
    m.vanilla->to(c.device);
    m.mla->to(c.device);
    return m;
}

AbsorbReport run_absorb_case(const AbsorbCase& c, DType dtype) {
    const Part13Models models = make_part13_models(c, dtype);
    const nn::MultiHeadAttention& vanilla = *models.vanilla;
    const nn::MultiHeadLatentAttention& mla = *models.mla;
    const Tensor &x = models.x, &y = models.y;
    NoGradGuard no_grad;
    // Reduced matrices once, like the spec's model; both forms of the absorbed path.
    const nn::AbsorbedLatentAttention precomputed(mla, nn::AbsorbedForm::Precomputed);
    const nn::AbsorbedLatentAttention factored(mla, nn::AbsorbedForm::Factored);

    AbsorbReport rep;
    Tensor out_vanilla, out_precomputed, out_factored;
    rep.vanilla_seconds = fastest(c.repeats, c.device, out_vanilla, [&] { return vanilla.forward(x, y); });
    rep.precomputed_seconds = fastest(c.repeats, c.device, out_precomputed, [&] { return precomputed.forward(x, y); });
    rep.factored_seconds = fastest(c.repeats, c.device, out_factored, [&] { return factored.forward(x, y); });
    rep.error_precomputed = relative_error(out_precomputed, out_vanilla);
    rep.error_factored = relative_error(out_factored, out_vanilla);
    rep.gflop = absorb_gflop(c);
    return rep;
}

AbsorbGflop absorb_gflop(const AbsorbCase& c) {
    const double B = double(c.B), L1 = double(c.L1), L2 = double(c.L2), D = double(c.D), H = double(c.H),
                 r = double(c.r), d = D / H;
    // Multiply-adds. Vanilla: Q and O (B*L1*D*D each), K and V (B*L2*D*D each), scores and sum
    // (B*L1*L2*D each). Absorbed: c (B*L2*r*D), scores and sum over the latent (B*L1*H*L2*r each),
    // and reduced Q and O: H*r*D per token each when precomputed, H*d*(D + r) when factored.
    const double vanilla = 2 * B * L1 * D * D + 2 * B * L2 * D * D + 2 * B * L1 * L2 * D;
    const double shared = B * L2 * r * D + 2 * B * L1 * H * L2 * r;
    const double precomputed = shared + 2 * B * L1 * H * r * D;
    const double factored = shared + 2 * B * L1 * H * d * (D + r);
    return {2 * vanilla / 1e9, 2 * precomputed / 1e9, 2 * factored / 1e9};
}

DecodeReport run_decode(const nn::Attention& module, int64_t batch, int64_t steps, uint64_t seed, bool check) {
    LATTE_CHECK(batch > 0 && steps > 0, "latte decode: batch and steps must be positive, got ", batch, " and ", steps);
    NoGradGuard no_grad;
    Generator gen(seed);
    const TensorOptions options =
        TensorOptions{}.with_dtype(module.parameters().front().dtype()).with_device(module.device());
    Tensor tokens = randn({batch, steps, module.input_width()}, gen, options);
    auto decoder = nn::make_decoder(module, batch, steps);
    std::vector<Tensor> outputs;
    outputs.reserve(static_cast<size_t>(steps));
    const auto start = std::chrono::steady_clock::now();
    for (int64_t t = 0; t < steps; ++t) outputs.push_back(decoder->step(narrow(tokens, 1, t, 1)));
    sync(options.device);
    DecodeReport rep;
    rep.seconds = seconds_since(start);
    rep.tokens = batch * steps;
    rep.numbers_per_position = decoder->cache_numbers_per_position();
    rep.bytes_per_position = rep.numbers_per_position * static_cast<int64_t>(dtype_size(options.dtype));
    rep.total_bytes = decoder->cache_bytes();
    if (check) {
        rep.checked = true;
        rep.relative_error = relative_error(cat(outputs, 1), module.forward(tokens, tokens, true));
    }
    return rep;
}

}  // namespace latte::experiments
