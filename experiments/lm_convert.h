// `latte convert` on a whole language model: a RoPE-free GQA DecoderLM file (latte lm --attention
// gqa --rope off --save) -> the MLA DecoderLM whose logits equal it (nn::to_mla per layer, every
// other parameter copied), checked on random token ids, saved in the file's dtype.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "nn/decoder_lm.h"

namespace latte::experiments {

// Whether a weights file's metadata says module=decoder_lm (reads the header only).
bool is_lm_file(const std::string& path);

struct LMConvertReport {
    nn::DecoderLMConfig gqa, mla;
    int64_t rank_needed = 0;          // the largest numerical rank of any layer's [W_K; W_V]
    double relative_error64 = 0;      // logits of MLA vs GQA, both in float64
    double relative_error_saved = 0;  // the same, both cast to the file's dtype
    DType dtype = DType::Float32;
    int64_t gqa_cache = 0, mla_cache = 0;  // numbers per position per layer
    bool partial_rope = false;             // by nn::to_mla_rope: not exact, fine-tune it
};

// Converts in float64 and checks the logits on seeded random token ids in float64 and in the
// file's dtype; throws latte::Error "latte convert: ..." for a model that is not a GQA (saying
// why), and for a non-finite check, writing nothing. A RoPE-free GQA converts exactly to MLA
// (nn::to_mla; rope_dim must be 0); a GQA with RoPE and G = 1 converts by partial RoPE to
// MLA + RoPE with rope_dim rotary dims (nn::to_mla_rope), which is not exact: the logits'
// difference is reported, not checked.
LMConvertReport convert_lm_checkpoint(const std::string& in, const std::string& out, int64_t rank = 0,
                                      int64_t rope_dim = 0);

// convert_lm_checkpoint, then its report on stdout. Returns the exit code.
int run_lm_convert(const std::string& in, const std::string& out, int64_t rank, int64_t rope_dim = 0);

}  // namespace latte::experiments
