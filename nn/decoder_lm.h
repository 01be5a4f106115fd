// A decoder-only language model: token embedding, `layers` pre-norm TransformerBlocks with
// causal self-attention, a final norm and an untied output head (Linear D -> vocab, no bias).
//   attention mha:      MultiHeadAttention(D, D, d, d, H) with RoPE on q and k
//             gqa:      GroupedQueryAttention(D, D, d, d, H, G) with RoPE on q and k
//             mla:      MultiHeadLatentAttention(D, H, d, r) (no positional encoding: NoPE)
//             mla_rope: MultiHeadLatentAttentionRoPE(D, H, d, r, d_R) (decoupled RoPE)
// Parameters: embed.weight (V, D), layers.<i>.{norm1, attn, norm2, mlp}.*, norm.*, head.weight (V, D).
#pragma once
#include <string>

#include "attention.h"
#include "container.h"
#include "embedding.h"
#include "linear.h"
#include "norm.h"
#include "transformer.h"

namespace latte::nn {

enum class AttentionKind { MHA, GQA, MLA, MLARoPE };
// "mha", "gqa", "mla", "mla_rope"; parse_attention_kind throws on anything else.
std::string attention_kind_name(AttentionKind kind);
AttentionKind parse_attention_kind(const std::string& name);

struct DecoderLMConfig {
    int64_t vocab = 0, width = 0, layers = 1;
    AttentionKind attention = AttentionKind::MHA;
    int64_t heads = 1, head_dim = 0;  // head_dim 0: width / heads
    int64_t kv_heads = 0;             // GQA's G (0: heads)
    int64_t rank = 0;                 // MLA's r
    int64_t rope_dim = 0;             // mla_rope's d_R
    int64_t mlp_hidden = 0;           // 0: 4 * width
    NormType norm = NormType::RMS;
    double rope_base = 10000.0;
    DType dtype = DType::Float32;
};

class DecoderLM : public Module {
public:
    DecoderLM(const DecoderLMConfig& config, Generator& gen);

    // ids (B, L) int64 -> logits (B, L, vocab).
    Tensor forward(const Tensor& ids) const;
    Tensor operator()(const Tensor& ids) const { return forward(ids); }
    // Mean cross-entropy of forward(ids) against targets (B, L) int64 (ignore_index -100 skipped).
    Tensor loss(const Tensor& ids, const Tensor& targets) const;

    const DecoderLMConfig& lm_config() const { return config_; }
    std::map<std::string, std::string> config() const override;
    const TransformerBlock& layer(size_t i) const { return *layers->at<TransformerBlock>(i); }

    std::shared_ptr<Embedding> embed;
    std::shared_ptr<ModuleList> layers;
    std::shared_ptr<Norm> norm;
    std::shared_ptr<Linear> head;

private:
    DecoderLMConfig config_;
};

// The attention module of one layer as `config` describes it (causal self-attention, widths D).
std::shared_ptr<Attention> make_lm_attention(const DecoderLMConfig& config, Generator& gen);

}  // namespace latte::nn
