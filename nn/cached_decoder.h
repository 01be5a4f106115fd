// Whole-model cached decoding of a DecoderLM: each layer's attention keeps its own cache
// (nn/decode.h: K and V for mha and gqa, the latent for mla, the latent and the rotated shared key
// for mla_rope), so a new token costs one position of work per layer, not a forward over the
// whole sequence so far.
//   nn::CachedDecoderLM decoder(model, B, capacity);
//   Tensor logits = decoder.step(prompt);   // ids (B, n) -> logits (B, n, vocab): a prefill
//   logits = decoder.step(next);            // (B, 1) -> (B, 1, vocab), at position n
// Each step's logits equal model.forward's on the whole sequence so far, at the same positions.
// Inference only: no autodiff graph is recorded. The model must outlive the decoder and keep its
// weights while decoding.
#pragma once
#include <memory>
#include <vector>

#include "decode.h"
#include "decoder_lm.h"

namespace latte::nn {

class CachedDecoderLM {
public:
    // Caches for `batch` sequences of up to `capacity` positions each (allocated now).
    CachedDecoderLM(const DecoderLM& model, int64_t batch, int64_t capacity);

    // Appends ids (batch, n) int64, each in [0, vocab), at the next n positions and returns their
    // logits (batch, n, vocab). Throws latte::Error, with the caches unchanged, on a wrong dtype or
    // shape, an id out of the vocabulary, or more positions than the capacity has left.
    Tensor step(const Tensor& ids);
    Tensor operator()(const Tensor& ids) { return step(ids); }

    int64_t batch() const { return batch_; }
    int64_t capacity() const { return capacity_; }
    int64_t length() const { return length_; }  // positions decoded so far
    int64_t cache_bytes() const;                // all layers, all sequences

private:
    const DecoderLM& model_;
    int64_t batch_, capacity_, length_ = 0;
    std::vector<std::unique_ptr<Decoder>> layers_;  // one per TransformerBlock
};

}  // namespace latte::nn
