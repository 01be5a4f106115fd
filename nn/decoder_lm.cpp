#include "nn/decoder_lm.h"

#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::nn {

std::string attention_kind_name(AttentionKind kind) {
    switch (kind) {
        case AttentionKind::MHA: return "mha";
        case AttentionKind::GQA: return "gqa";
        case AttentionKind::MLA: return "mla";
        case AttentionKind::MLARoPE: return "mla_rope";
    }
    return "?";
}

AttentionKind parse_attention_kind(const std::string& name) {
    for (AttentionKind k : {AttentionKind::MHA, AttentionKind::GQA, AttentionKind::MLA, AttentionKind::MLARoPE})
        if (attention_kind_name(k) == name) return k;
    LATTE_FAIL("unknown attention kind '", name, "' (expected mha, gqa, mla or mla_rope)");
}

std::shared_ptr<Attention> make_lm_attention(const DecoderLMConfig& c, Generator& gen) {
    const int64_t d = c.head_dim > 0 ? c.head_dim : (c.heads > 0 ? c.width / c.heads : 0);
    const RoPE rope{true, c.rope_base};
    switch (c.attention) {
        case AttentionKind::MHA:
            return std::make_shared<MultiHeadAttention>(c.width, c.width, d, d, c.heads, gen, c.dtype, rope);
        case AttentionKind::GQA:
            return std::make_shared<GroupedQueryAttention>(c.width, c.width, d, d, c.heads,
                                                           c.kv_heads > 0 ? c.kv_heads : c.heads, gen, c.dtype, rope);
        case AttentionKind::MLA:
            return std::make_shared<MultiHeadLatentAttention>(c.width, c.heads, d, c.rank, gen, c.dtype);
        case AttentionKind::MLARoPE:
            return std::make_shared<MultiHeadLatentAttentionRoPE>(c.width, c.heads, d, c.rank, c.rope_dim, gen,
                                                                  c.dtype, c.rope_base);
    }
    LATTE_FAIL("make_lm_attention: unknown attention kind");
}

DecoderLM::DecoderLM(const DecoderLMConfig& config, Generator& gen) : config_(config) {
    LATTE_CHECK(config.vocab > 0 && config.width > 0 && config.layers > 0 && config.heads > 0,
                "DecoderLM: vocab, width, layers and heads must be positive, got vocab=", config.vocab,
                " D=", config.width, " layers=", config.layers, " H=", config.heads);
    if (config_.head_dim <= 0) {
        LATTE_CHECK(config.width % config.heads == 0, "DecoderLM: D=", config.width, " is not a multiple of H=",
                    config.heads, " (give head_dim)");
        config_.head_dim = config.width / config.heads;
    }
    if (config_.kv_heads <= 0) config_.kv_heads = config_.heads;
    if (config_.mlp_hidden <= 0) config_.mlp_hidden = 4 * config.width;
    embed = register_module("embed", std::make_shared<Embedding>(config_.vocab, config_.width, gen, config_.dtype));
    layers = register_module("layers", std::make_shared<ModuleList>());
    for (int64_t i = 0; i < config_.layers; ++i)
        layers->push_back(std::make_shared<TransformerBlock>(config_.width, make_lm_attention(config_, gen),
                                                             config_.mlp_hidden, gen, config_.norm, config_.dtype));
    norm = register_module("norm", make_norm(config_.norm, config_.width, config_.dtype));
    head = register_module("head", std::make_shared<Linear>(config_.width, config_.vocab, false, gen, config_.dtype));
}

Tensor DecoderLM::forward(const Tensor& ids) const {
    check_defined(ids, "DecoderLM", "ids");
    LATTE_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64, "DecoderLM: expected ids (B, L) int64, got ",
                dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
    Tensor h = embed->forward(ids);  // (B, L, D)
    for (const auto& block : *layers) h = static_cast<const TransformerBlock&>(*block).forward(h);
    return head->forward(norm->forward(h));  // (B, L, V)
}

Tensor DecoderLM::loss(const Tensor& ids, const Tensor& targets) const {
    check_defined(targets, "DecoderLM::loss", "targets");
    LATTE_CHECK(targets.shape() == ids.shape(), "DecoderLM::loss: targets ", shape_str(targets.shape()),
                " must have the shape of ids ", shape_str(ids.shape()));
    return cross_entropy(forward(ids), targets);
}

std::map<std::string, std::string> DecoderLM::config() const {
    const auto& c = config_;
    return {{"module", "decoder_lm"},
            {"vocab", std::to_string(c.vocab)},
            {"D", std::to_string(c.width)},
            {"layers", std::to_string(c.layers)},
            {"attention", attention_kind_name(c.attention)},
            {"H", std::to_string(c.heads)},
            {"d", std::to_string(c.head_dim)},
            {"G", std::to_string(c.kv_heads)},
            {"r", std::to_string(c.rank)},
            {"d_R", std::to_string(c.rope_dim)},
            {"mlp_hidden", std::to_string(c.mlp_hidden)},
            {"norm", c.norm == NormType::RMS ? "rms" : "layer"},
            {"rope_base", state_text::from_double(c.rope_base)}};
}

}  // namespace latte::nn
