#include "nn/decoder_lm.h"

#include <algorithm>
#include <limits>

#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "nn/serialize.h"
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
    const RoPE rope{c.rope, c.rope_base, c.rope_pairing};
    const LatentOptions latent{c.latent_norm, c.q_rank};
    switch (c.attention) {
        case AttentionKind::MHA:
            return std::make_shared<MultiHeadAttention>(c.width, c.width, d, d, c.heads, gen, c.dtype, rope);
        case AttentionKind::GQA:
            return std::make_shared<GroupedQueryAttention>(c.width, c.width, d, d, c.heads,
                                                           c.kv_heads > 0 ? c.kv_heads : c.heads, gen, c.dtype, rope);
        case AttentionKind::MLA:
            return std::make_shared<MultiHeadLatentAttention>(c.width, c.heads, d, c.rank, gen, c.dtype, latent);
        case AttentionKind::MLARoPE:
            return std::make_shared<MultiHeadLatentAttentionRoPE>(c.width, c.heads, d, c.rank, c.rope_dim, gen,
                                                                  c.dtype, c.rope_base, latent, c.rope_pairing);
    }
    LATTE_FAIL("make_lm_attention: unknown attention kind");
}

DecoderLM::DecoderLM(const DecoderLMConfig& config, Generator& gen) : config_(config) {
    LATTE_CHECK(config.vocab > 0 && config.width > 0 && config.layers > 0 && config.heads > 0,
                "DecoderLM: vocab, width, layers and heads must be positive, got vocab=", config.vocab,
                " D=", config.width, " layers=", config.layers, " H=", config.heads);
    LATTE_CHECK(config.head_dim >= 0 && config.kv_heads >= 0 && config.rank >= 0 && config.rope_dim >= 0 &&
                    config.mlp_hidden >= 0 && config.q_rank >= 0,
                "DecoderLM: head_dim, kv_heads, rank, rope_dim and mlp_hidden must be 0 (the default) or positive, "
                "got head_dim=", config.head_dim, " kv_heads=", config.kv_heads, " rank=", config.rank,
                " rope_dim=", config.rope_dim, " mlp_hidden=", config.mlp_hidden, " q_rank=", config.q_rank);
    if (config_.head_dim <= 0) {
        LATTE_CHECK(config.width % config.heads == 0, "DecoderLM: D=", config.width, " is not a multiple of H=",
                    config.heads, " (give head_dim)");
        config_.head_dim = config.width / config.heads;
    }
    if (config_.kv_heads <= 0) config_.kv_heads = config_.heads;
    // mla has no positional encoding and mla_rope always has its decoupled one: rope then says so.
    if (config_.attention == AttentionKind::MLA) config_.rope = false;
    if (config_.attention == AttentionKind::MLARoPE) config_.rope = true;
    // Only the latent kinds have a latent to normalise or queries to compress.
    const bool latent = config_.attention == AttentionKind::MLA || config_.attention == AttentionKind::MLARoPE;
    if (!latent) {
        config_.latent_norm = false;
        config_.q_rank = 0;
    }
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
    std::map<std::string, std::string> m{{"module", "decoder_lm"},
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
    // Only mha and gqa can switch RoPE off; mla never has it and mla_rope always does.
    if (c.attention == AttentionKind::MHA || c.attention == AttentionKind::GQA) m["rope"] = state_text::from_bool(c.rope);
    if (c.rope && c.rope_pairing != RoPEPairing::RotateHalf) m["rope_pairing"] = rope_pairing_name(c.rope_pairing);
    if (c.attention == AttentionKind::MLA || c.attention == AttentionKind::MLARoPE) {
        m["latent_norm"] = state_text::from_bool(c.latent_norm);
        m["q_rank"] = std::to_string(c.q_rank);
    }
    return m;
}

namespace {

// A metadata size: an integer >= min.
int64_t size_entry(const std::map<std::string, std::string>& metadata, const std::string& key, int64_t min,
                   const std::string& who) {
    const int64_t v = state_text::get_int(metadata, key, who + ": metadata");
    LATTE_CHECK(v >= min, who, ": metadata ", key, "=", v, " must be at least ", min);
    return v;
}

}  // namespace

DecoderLMConfig decoder_lm_config(const std::map<std::string, std::string>& metadata, const std::string& who) {
    const std::string& module = state_text::get(metadata, "module", who + ": metadata");
    LATTE_CHECK(module == "decoder_lm", who, ": metadata module='", module, "' is not decoder_lm");
    DecoderLMConfig c;
    c.attention = parse_attention_kind(state_text::get(metadata, "attention", who + ": metadata"));
    c.vocab = size_entry(metadata, "vocab", 1, who);
    c.width = size_entry(metadata, "D", 1, who);
    c.layers = size_entry(metadata, "layers", 1, who);
    c.heads = size_entry(metadata, "H", 1, who);
    c.head_dim = size_entry(metadata, "d", 1, who);
    c.kv_heads = size_entry(metadata, "G", 1, who);
    c.mlp_hidden = size_entry(metadata, "mlp_hidden", 1, who);
    const bool latent = c.attention == AttentionKind::MLA || c.attention == AttentionKind::MLARoPE;
    c.rank = size_entry(metadata, "r", latent ? 1 : 0, who);
    c.rope_dim = size_entry(metadata, "d_R", c.attention == AttentionKind::MLARoPE ? 2 : 0, who);
    LATTE_CHECK(c.heads % c.kv_heads == 0, who, ": metadata H=", c.heads, " is not a multiple of G=", c.kv_heads);
    const std::string& norm = state_text::get(metadata, "norm", who + ": metadata");
    LATTE_CHECK(norm == "rms" || norm == "layer", who, ": metadata norm='", norm, "' is not rms or layer");
    c.norm = norm == "rms" ? NormType::RMS : NormType::Layer;
    c.rope_base = state_text::get_double(metadata, "rope_base", who + ": metadata");
    c.rope = metadata.count("rope") ? state_text::get_bool(metadata, "rope", who + ": metadata") : true;
    if (auto it = metadata.find("rope_pairing"); it != metadata.end())
        c.rope_pairing = parse_rope_pairing(it->second, who + ": metadata rope_pairing");
    // Files from before the latent norm were trained without it.
    c.latent_norm = metadata.count("latent_norm") ? state_text::get_bool(metadata, "latent_norm", who + ": metadata")
                                                  : false;
    c.q_rank = metadata.count("q_rank") ? size_entry(metadata, "q_rank", 0, who) : 0;
    LATTE_CHECK(latent || (!c.latent_norm && c.q_rank == 0), who, ": metadata latent_norm / q_rank are for mla and "
                "mla_rope, not ", attention_kind_name(c.attention));
    return c;
}

int64_t decoder_lm_parameter_count(const DecoderLMConfig& c, const std::string& who) {
    auto mul = [&](int64_t a, int64_t b) { return checked_mul(a, b, who + ": parameter count"); };
    auto add = [&](int64_t a, int64_t b) {
        LATTE_CHECK(a <= std::numeric_limits<int64_t>::max() - b, who, ": parameter count overflows int64");
        return a + b;
    };
    const int64_t D = c.width, d = c.head_dim > 0 ? c.head_dim : c.width / std::max<int64_t>(c.heads, 1);
    const int64_t Hd = mul(c.heads, d), norm = c.norm == NormType::RMS ? D : mul(2, D);
    const bool latent = c.attention == AttentionKind::MLA || c.attention == AttentionKind::MLARoPE;
    // What W_Q (and W_QR) read: D, or c_Q of q_rank (after W_DQ (q_rank, D) and q_norm (q_rank)).
    const int64_t q_in = latent && c.q_rank > 0 ? c.q_rank : D;
    int64_t attn = add(mul(Hd, q_in), mul(Hd, D));  // W_Q and W_O
    switch (c.attention) {
        case AttentionKind::MHA: attn = add(attn, mul(2, mul(Hd, D))); break;
        case AttentionKind::GQA: attn = add(attn, mul(2, mul(mul(c.kv_heads > 0 ? c.kv_heads : c.heads, d), D))); break;
        case AttentionKind::MLARoPE:
            attn = add(attn, mul(mul(c.heads, c.rope_dim), q_in));
            attn = add(attn, mul(c.rope_dim, D));
            [[fallthrough]];
        case AttentionKind::MLA:
            attn = add(add(attn, mul(c.rank, D)), mul(2, mul(Hd, c.rank)));
            if (c.latent_norm) attn = add(attn, c.rank);
            if (c.q_rank > 0) attn = add(attn, add(mul(c.q_rank, D), c.q_rank));
            break;
    }
    const int64_t hidden = c.mlp_hidden > 0 ? c.mlp_hidden : mul(4, D);
    const int64_t layer = add(add(attn, mul(3, mul(D, hidden))), mul(2, norm));
    return add(add(mul(2, mul(c.vocab, D)), mul(c.layers, layer)), norm);
}

DecoderLMConfig decoder_lm_file_config(const std::string& path) {
    const std::string who = "load: " + path;
    const SafetensorsHeader header = read_safetensors_header(path);
    const DecoderLMConfig config = decoder_lm_config(header.metadata, who);
    int64_t in_file = 0;
    for (const SafetensorsEntry& e : header.tensors) {
        const int64_t n = checked_numel(e.shape, who + ": tensor " + e.name);
        LATTE_CHECK(in_file <= std::numeric_limits<int64_t>::max() - n, who, ": tensor sizes overflow int64");
        in_file += n;
    }
    const int64_t expected = decoder_lm_parameter_count(config, who);
    // Only with the sizes confirmed by the file's own tensors is the model allocated; nn::load
    // then checks every name and shape.
    LATTE_CHECK(in_file == expected, who, ": its metadata describes a DecoderLM of ", expected,
                " parameters, but its tensors hold ", in_file, " numbers");
    return config;
}

std::shared_ptr<DecoderLM> load_decoder_lm(const std::string& path, DType dtype) {
    DecoderLMConfig typed = decoder_lm_file_config(path);
    typed.dtype = dtype;
    Generator unused(0);
    auto model = std::make_shared<DecoderLM>(typed, unused);
    load(*model, path);
    return model;
}

}  // namespace latte::nn
