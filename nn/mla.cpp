#include "nn/mla.h"

#include <cmath>

#include "nn/absorbed.h"
#include "core/parse.h"
#include "nn/mha.h"
#include "ops/ops.h"

namespace latte::nn {

void write_latent_options(std::map<std::string, std::string>& config, const LatentOptions& options) {
    if (options.kv_norm) config["kv_norm"] = "true";
    if (options.q_rank > 0) config["q_rank"] = std::to_string(options.q_rank);
}

LatentOptions read_latent_options(const std::map<std::string, std::string>& config, const std::string& who) {
    LatentOptions o;
    if (auto it = config.find("kv_norm"); it != config.end()) {
        LATTE_CHECK(it->second == "true" || it->second == "false", who, ": 'kv_norm' = '", it->second,
                    "' is not true or false");
        o.kv_norm = it->second == "true";
    }
    if (auto it = config.find("q_rank"); it != config.end())
        LATTE_CHECK(parse_int(it->second, o.q_rank) && o.q_rank >= 0, who, ": 'q_rank' = '", it->second,
                    "' is not an integer >= 0");
    return o;
}

LatentNorms::LatentNorms(const char* who, int64_t width, int64_t rank, const LatentOptions& options, Generator& gen,
                         DType dtype)
    : options_(options) {
    LATTE_CHECK(options.q_rank >= 0, who, ": q_rank must be 0 (no query compression) or positive, got ",
                options.q_rank);
    if (options.q_rank > 0) {
        W_DQ = std::make_shared<Linear>(width, options.q_rank, false, gen, dtype);
        q_norm = std::make_shared<RMSNorm>(options.q_rank, 1e-6, dtype);
    }
    if (options.kv_norm) kv_norm = std::make_shared<RMSNorm>(rank, 1e-6, dtype);
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> LatentNorms::modules() const {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
    if (W_DQ) out.emplace_back("W_DQ", W_DQ);
    if (q_norm) out.emplace_back("q_norm", q_norm);
    if (kv_norm) out.emplace_back("kv_norm", kv_norm);
    return out;
}

Tensor LatentNorms::query_input(const Tensor& x) const { return W_DQ ? q_norm->forward(W_DQ->forward(x)) : x; }

Tensor LatentNorms::latent(const Tensor& projected) const {
    return kv_norm ? kv_norm->forward(projected) : projected;
}

MultiHeadLatentAttention::MultiHeadLatentAttention(int64_t width, int64_t heads, int64_t head_dim, int64_t rank,
                                                   Generator& gen, DType dtype, LatentOptions options)
    : width_(width), heads_(heads), head_dim_(head_dim), rank_(rank) {
    LATTE_CHECK(width > 0 && heads > 0 && head_dim > 0 && rank > 0, "MultiHeadLatentAttention: sizes must be positive, got D=",
                width, " H=", heads, " d=", head_dim, " r=", rank);
    LATTE_CHECK(width == heads * head_dim, "MultiHeadLatentAttention: D=", width, " must equal H*d=", heads, "*",
                head_dim);
    const int64_t q_in = options.q_rank > 0 ? options.q_rank : width;
    W_Q = register_module("W_Q", std::make_shared<Linear>(q_in, heads * head_dim, false, gen, dtype));
    W_DKV = register_module("W_DKV", std::make_shared<Linear>(width, rank, false, gen, dtype));
    W_UK = register_module("W_UK", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_UV = register_module("W_UV", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_O = register_module("W_O", std::make_shared<Linear>(heads * head_dim, width, false, gen, dtype));
    // After the spec's five, so that the plain MLA draws and orders its weights as before.
    norms_ = LatentNorms("MultiHeadLatentAttention", width, rank, options, gen, dtype);
    for (const auto& [name, m] : norms_.modules()) register_module(name, m);
}

Tensor MultiHeadLatentAttention::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("MultiHeadLatentAttention", x, y, width_, width_);
    Tensor q = W_Q->forward(query_input(x));  // (B, L1, H*d)
    Tensor c = latent(y);                     // (B, L2, r), shared by K and V
    Tensor k = W_UK->forward(c);   // (B, L2, H*d)
    Tensor v = W_UV->forward(c);   // (B, L2, H*d)
    Tensor o = grouped_attention(q, k, v, heads_, heads_, causal, 1.0 / std::sqrt(double(head_dim_)));  // (B, L1, H*d)
    return W_O->forward(o);        // (B, L1, D)
}

Tensor MultiHeadLatentAttention::forward_absorbed(const Tensor& x, const Tensor& y, bool causal) const {
    return AbsorbedLatentAttention(*this).forward(x, y, causal);
}

std::map<std::string, std::string> MultiHeadLatentAttention::config() const {
    std::map<std::string, std::string> c{{"module", "mla"}, {"D", std::to_string(width_)}, {"H", std::to_string(heads_)},
            {"d", std::to_string(head_dim_)}, {"r", std::to_string(rank_)}};
    write_latent_options(c, options());
    return c;
}

}  // namespace latte::nn
