// A decoder-only language model: token embedding, `layers` pre-norm TransformerBlocks with
// causal self-attention, a final norm and an untied output head (Linear D -> vocab, no bias).
//   attention mha:      MultiHeadAttention(D, D, d, d, H) with RoPE on q and k (unless rope = false)
//             gqa:      GroupedQueryAttention(D, D, d, d, H, G) with RoPE on q and k (unless rope = false)
//             mla:      MultiHeadLatentAttention(D, H, d, r) (no positional encoding: NoPE)
//             mla_rope: MultiHeadLatentAttentionRoPE(D, H, d, r, d_R) (decoupled RoPE)
//   mla and mla_rope normalise their latent (RMSNorm on c_KV, as DeepSeek-V2) unless
//   latent_norm = false, and compress their queries to q_rank when it is > 0.
// Parameters: embed.weight (V, D), layers.<i>.{norm1, attn, norm2, mlp}.*, norm.*, head.weight (V, D).
#pragma once
#include <map>
#include <memory>
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
    // RoPE on mha's and gqa's q and k. Off, they have no positional encoding (like mla), and a GQA
    // model converts exactly to MLA (nn::to_mla in conversion.h): a rotation between W_K and the
    // scores stops W_UK from folding into the queries. The model sets it false for mla and true
    // for mla_rope (its decoupled RoPE), so lm_config().rope says whether it has rotary dims.
    bool rope = true;
    RoPEPairing rope_pairing = RoPEPairing::RotateHalf;
    // mla and mla_rope: DeepSeek-V2's RMSNorm on the latent (LatentOptions::kv_norm), and its query
    // compression (q_rank 0: none). Without the norm these models learn recall far more slowly
    // (docs/kv_study.md); latent_norm = false gives the spec's MLA, which a GQA converts to exactly.
    bool latent_norm = true;
    int64_t q_rank = 0;
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

// The config a DecoderLM's config() wrote (a weights file's metadata): module=decoder_lm and every
// size, checked (positive integers, D = H*d, G dividing H, r and d_R as the kind needs; "rope"
// absent reads as true, as files from before the flag had it). Throws latte::Error naming `who`.
DecoderLMConfig decoder_lm_config(const std::map<std::string, std::string>& metadata, const std::string& who);

// The number of parameters a DecoderLM of `config` has, from the sizes alone (nothing allocated);
// throws naming `who` on overflow.
int64_t decoder_lm_parameter_count(const DecoderLMConfig& config, const std::string& who);

// The config of the DecoderLM a weights file (nn::save of a DecoderLM, `latte lm --save`) holds,
// read from its header: the metadata's sizes are checked against the file's tensors (their
// total count) before anything is allocated, so a small file cannot make latte build a huge
// model. Throws latte::Error "load: <path>: ...".
DecoderLMConfig decoder_lm_file_config(const std::string& path);
// That DecoderLM, in `dtype`, with the file's weights (nn::load checks every name and shape).
std::shared_ptr<DecoderLM> load_decoder_lm(const std::string& path, DType dtype = DType::Float32);

}  // namespace latte::nn
