#include "experiments/lm_convert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/autograd.h"
#include "experiments/inference.h"
#include "nn/conversion.h"
#include "nn/gqa.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

// Relative error of b's logits against a's on seeded random token ids.
double logits_difference(const nn::DecoderLM& a, const nn::DecoderLM& b, uint64_t seed) {
    NoGradGuard no_grad;
    Generator gen(seed);
    const int64_t B = 2, L = 16, V = a.lm_config().vocab;
    std::vector<double> ids;
    for (int64_t i = 0; i < B * L; ++i) ids.push_back(double(gen.next_u64() % uint64_t(V)));
    const Tensor t = from_vector(ids, {B, L}, TensorOptions{}.with_dtype(DType::Int64));
    return relative_error(b.forward(t), a.forward(t));
}

}  // namespace

bool is_lm_file(const std::string& path) {
    const nn::SafetensorsHeader header = nn::read_safetensors_header(path);
    auto it = header.metadata.find("module");
    return it != header.metadata.end() && it->second == "decoder_lm";
}

LMConvertReport convert_lm_checkpoint(const std::string& in, const std::string& out, int64_t rank, int64_t rope_dim) {
    const nn::SafetensorsHeader header = nn::read_safetensors_header(in);
    LATTE_CHECK(!header.tensors.empty(), "latte convert: ", in, " holds no tensors");
    const nn::DecoderLMConfig config = nn::decoder_lm_file_config(in);
    const std::string kind = nn::attention_kind_name(config.attention);
    LATTE_CHECK(config.attention == nn::AttentionKind::GQA, "latte convert: ", in, " holds a language model with ",
                kind, " attention; only a gqa one converts to MLA");
    LATTE_CHECK(!config.rope || rope_dim > 0, "latte convert: ", in,
                " holds a gqa language model with RoPE on q and k, which no MLA reproduces exactly: RoPE rotates each "
                "key by its position, so the keys cannot be rebuilt from one position-free latent W_DKV x. Train it "
                "with latte lm --attention gqa --rope off, or convert it by partial RoPE with --rope-dim D_R (G = 1; "
                "not exact, fine-tune it afterwards)");
    LATTE_CHECK(config.rope || rope_dim == 0, "latte convert: --rope-dim ", rope_dim, " is for a gqa language model "
                "with RoPE; ", in, " has none, and converts exactly to MLA without it");
    LMConvertReport report;
    report.dtype = header.tensors.front().dtype;
    report.partial_rope = config.rope;
    auto gqa = nn::load_decoder_lm(in, DType::Float64);
    auto mla = config.rope ? nn::to_mla_rope(*gqa, rank, rope_dim) : nn::to_mla(*gqa, rank);
    report.gqa = gqa->lm_config();
    report.mla = mla->lm_config();
    if (!config.rope)
        for (size_t i = 0; i < size_t(config.layers); ++i)
            report.rank_needed = std::max(report.rank_needed, nn::rank_needed(static_cast<const nn::GroupedQueryAttention&>(
                                                                  *gqa->layer(i).attn)));
    report.gqa_cache = gqa->layer(0).attn->kv_cache_per_position();
    report.mla_cache = mla->layer(0).attn->kv_cache_per_position();
    report.relative_error64 = logits_difference(*gqa, *mla, 0);
    // What is saved is in the file's dtype: check that too.
    gqa->to(report.dtype);
    mla->to(report.dtype);
    report.relative_error_saved = logits_difference(*gqa, *mla, 1);
    if (report.partial_rope)  // not exact by design: only a non-finite check is refused
        LATTE_CHECK(std::isfinite(report.relative_error64) && std::isfinite(report.relative_error_saved),
                    "latte convert: the check of the MLA + RoPE language model against the GQA gave relative error ",
                    report.relative_error64, "; nothing written to ", out);
    else
        check_conversion("the MLA language model against the GQA", report.relative_error64,
                         report.relative_error_saved, report.dtype, report.mla.rank, report.rank_needed, out);
    for (const auto& [name, p] : mla->named_parameters())
        nn::check_finite(p, "latte convert: the converted model's tensor '" + name + "'");
    nn::save(*mla, out);
    return report;
}

int run_lm_convert(const std::string& in, const std::string& out, int64_t rank, int64_t rope_dim) {
    const LMConvertReport r = convert_lm_checkpoint(in, out, rank, rope_dim);
    if (r.partial_rope) {
        std::printf("converted a GQA language model with RoPE -> MLA + RoPE by partial RoPE: %lld layers, D=%lld H=%lld "
                    "d=%lld G=1, latent rank r=%lld, rotary dims d_R=%lld (the %lld fastest-turning pairs)\n",
                    (long long)r.gqa.layers, (long long)r.gqa.width, (long long)r.gqa.heads,
                    (long long)r.gqa.head_dim, (long long)r.mla.rank, (long long)r.mla.rope_dim,
                    (long long)(r.mla.rope_dim / 2));
        std::printf("KV cache per position and layer: GQA %lld numbers, MLA + RoPE %lld numbers\n",
                    (long long)r.gqa_cache, (long long)r.mla_cache);
        std::printf("MLA + RoPE vs GQA logits on random token ids: relative error %.2e in float64, %.2e in %s (not "
                    "exact: the other pairs lost their rotation; fine-tune with latte lm --load)\n",
                    r.relative_error64, r.relative_error_saved, dtype_name(r.dtype));
        std::printf("wrote %s\n", out.c_str());
        return 0;
    }
    std::printf("converted a GQA language model -> MLA: %lld layers, D=%lld H=%lld d=%lld G=%lld, latent rank r=%lld "
                "(largest rank of a layer's [W_K; W_V]: %lld)\n",
                (long long)r.gqa.layers, (long long)r.gqa.width, (long long)r.gqa.heads, (long long)r.gqa.head_dim,
                (long long)r.gqa.kv_heads, (long long)r.mla.rank, (long long)r.rank_needed);
    std::printf("KV cache per position and layer: GQA %lld numbers, MLA %lld numbers\n", (long long)r.gqa_cache,
                (long long)r.mla_cache);
    std::printf("check: MLA vs GQA logits on random token ids, relative error %.2e in float64, %.2e in %s\n",
                r.relative_error64, r.relative_error_saved, dtype_name(r.dtype));
    std::printf("wrote %s\n", out.c_str());
    return 0;
}

}  // namespace latte::experiments
