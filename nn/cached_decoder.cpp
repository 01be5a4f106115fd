#include "nn/cached_decoder.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "ops/ops.h"

namespace latte::nn {

CachedDecoderLM::CachedDecoderLM(const DecoderLM& model, int64_t batch, int64_t capacity)
    : model_(model), batch_(batch), capacity_(capacity) {
    LATTE_CHECK(batch >= 1 && capacity >= 1, "CachedDecoderLM: batch and capacity must be at least 1, got batch=",
                batch, " capacity=", capacity);
    for (size_t i = 0; i < model.layers->size(); ++i)
        layers_.push_back(make_decoder(*model.layer(i).attn, batch, capacity));
}

Tensor CachedDecoderLM::step(const Tensor& ids) {
    check_defined(ids, "CachedDecoderLM::step", "ids");
    LATTE_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64 && ids.size(0) == batch_ && ids.size(1) >= 1,
                "CachedDecoderLM::step: expected ids (", batch_, ", n >= 1) int64, got ", dtype_name(ids.dtype()), " ",
                shape_str(ids.shape()));
    const int64_t n = ids.size(1), vocab = model_.lm_config().vocab;
    // Checked before any layer appends, so a refused step leaves every cache as it was.
    LATTE_CHECK(n <= capacity_ - length_, "CachedDecoderLM::step: ", n, " more positions do not fit: ", length_,
                " of ", capacity_, " are used");
    const std::vector<int64_t> values = ids.to_vector<int64_t>();
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    LATTE_CHECK(*lo >= 0 && *hi < vocab, "CachedDecoderLM::step: ids must be in [0, ", vocab, "), got ",
                *lo < 0 ? *lo : *hi);
    NoGradGuard no_grad;
    // TransformerBlock::forward, with each attention through its layer's cache.
    Tensor h = model_.embed->forward(ids);
    for (size_t i = 0; i < layers_.size(); ++i) {
        const TransformerBlock& block = model_.layer(i);
        h = h + layers_[i]->step(block.norm1->forward(h));
        h = h + block.mlp->forward(block.norm2->forward(h));
    }
    length_ += n;
    return model_.head->forward(model_.norm->forward(h));
}

int64_t CachedDecoderLM::cache_bytes() const {
    int64_t bytes = 0;
    for (const auto& layer : layers_) bytes += layer->cache_bytes();
    return bytes;
}

}  // namespace latte::nn
