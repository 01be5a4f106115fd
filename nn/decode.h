// Autoregressive decoding with a cache (the spec's Part 14): causal self-attention where each
// step appends new tokens and attends everything cached so far.
//   MHA/GQA cache K and V: 2*G*d numbers per position (2*D for MHA).
//   MLA caches only the latent c = W_DKV x: r numbers per position, read by the absorbed path.
//   MLA with decoupled RoPE caches c and the rotated shared key: r + d_R numbers per position.
//   With RoPE, keys are cached already rotated and each step's queries are rotated at their positions.
// Decoding is inference: steps run without recording autodiff graphs.
#pragma once
#include <memory>

#include "attention.h"

namespace latte::nn {

// Rows of `width` numbers per position for each of B sequences, preallocated for `capacity`
// positions, so appending never reallocates or copies what is already cached.
class PositionCache {
public:
    PositionCache(int64_t batch, int64_t capacity, int64_t width, const TensorOptions& options);

    // Appends rows (B, n, width); returns the whole filled cache (B, length, width) as a view.
    Tensor append(const Tensor& rows);
    Tensor filled() const;  // (B, length, width), a view

    int64_t length() const { return length_; }
    int64_t capacity() const { return storage_.size(1); }
    int64_t width() const { return storage_.size(2); }
    int64_t bytes() const;  // of the filled part, all sequences

private:
    Tensor storage_;  // (B, capacity, width)
    int64_t length_ = 0;
};

class Decoder {
public:
    virtual ~Decoder() = default;
    // Appends tokens x (B, n, D) at the next n positions and returns their outputs (B, n, D):
    // token i attends itself and every earlier token. n > 1 is a prefill.
    virtual Tensor step(const Tensor& x) = 0;
    // Caches tokens x (B, n, D) without computing their outputs: a prompt whose outputs are not
    // needed costs only its projections.
    virtual void append(const Tensor& x) = 0;
    virtual int64_t length() const = 0;
    // Numbers cached per position per sequence, and bytes cached now for all sequences.
    virtual int64_t cache_numbers_per_position() const = 0;
    virtual int64_t cache_bytes() const = 0;
};

// A decoder for an MHA, GQA, MLA or MLA-with-RoPE module (whose input and context widths must agree), for
// `batch` sequences of up to `capacity` positions. MLA (either form) decodes by the absorbed path. The module
// must outlive the decoder and keep its weights while decoding.
std::unique_ptr<Decoder> make_decoder(const Attention& module, int64_t batch, int64_t capacity);

}  // namespace latte::nn
