#include "nn/flash_attention.h"

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

// The kernels need a unit stride along the head width, and BLAS needs each row stride (a leading
// dimension) to be at least the width: an expanded or overlapping layout (say, the gradient of a
// mean over the sequence, stride 0) is copied first, or BLAS would skip the product.
Tensor kernel_layout(const Tensor& t) {
    const int64_t length = t.size(2), width = t.size(3);
    const bool unit = t.strides()[3] == 1 || width == 1;
    Tensor out = unit && (length == 1 || t.strides()[2] >= width) ? t : contiguous(t);
    if (out.strides()[2] < width) {  // one row (contiguous() keeps a size-1 dim's stride): its stride is never
        Shape strides = out.strides();  // stepped over, but BLAS checks it
        strides[2] = width;
        out = out.as_strided(out.shape(), strides, out.offset());
    }
    return out;
}

// An uninitialised [B, N, L, w] tensor laid out as (B, L, N, w): heads are the second-fastest
// dim, as in the projections, so the caller can merge them back without copying.
Tensor heads_view(int64_t b, int64_t n, int64_t l, int64_t w, const TensorOptions& options) {
    Tensor t = Tensor::empty({b, l, n, w}, options);
    return t.as_strided({b, n, l, w}, {l * n * w, w, n * w, 1}, 0);
}

}  // namespace

bool has_flash_attention(Device device) { return backend_for(device).has_fused_attention(); }

Tensor flash_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale, bool causal) {
    check_same_kind("flash attention", q_in, k_in);
    check_same_kind("flash attention", k_in, v_in);
    check_floating("flash attention", q_in);
    LATTE_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4 && q_in.size(0) == k_in.size(0) &&
                    k_in.size(0) == v_in.size(0) && k_in.size(1) == v_in.size(1) && k_in.size(1) > 0 &&
                    q_in.size(1) % k_in.size(1) == 0 && q_in.size(3) == k_in.size(3) && k_in.size(2) == v_in.size(2),
                "flash attention: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), ", v ",
                shape_str(v_in.shape()), " do not fit (need q [B,H,L1,d], k [B,G,L2,d], v [B,G,L2,dv], G | H)");
    AttentionSizes s;
    s.dtype = q_in.dtype();
    s.batch = q_in.size(0);
    s.heads = q_in.size(1);
    s.kv_heads = k_in.size(1);
    s.l1 = q_in.size(2);
    s.l2 = k_in.size(2);
    s.d = q_in.size(3);
    s.dv = v_in.size(3);
    s.scale = scale;
    s.causal = causal;
    LATTE_CHECK(!causal || s.l1 <= s.l2, "flash attention: a causal mask needs L1 <= L2, got L1=", s.l1, " L2=", s.l2);
    LATTE_CHECK(q_in.numel() > 0 && k_in.numel() > 0 && v_in.numel() > 0, "flash attention: empty q ",
                shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), " or v ", shape_str(v_in.shape()));
    // Under autocast(bf16), float32 attention takes bf16 products, and its backward (the node
    // keeps s) does too, wherever the backward runs.
    s.bf16 = autocast::current() == autocast::Precision::BFloat16 && s.dtype == DType::Float32;
    if (s.bf16) {
        std::string why_not;
        LATTE_CHECK(autocast::bf16_available(q_in.device(), &why_not), "flash attention of q ",
                    shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()), " on ",
                    q_in.device().str(), " under autocast(bf16): ", why_not);
    }
    const TensorOptions options = q_in.options();
    Tensor out = heads_view(s.batch, s.heads, s.l1, s.dv, options);
    const Tensor q = kernel_layout(q_in.detach()), k = kernel_layout(k_in.detach()),
                 v = kernel_layout(v_in.detach());
    Tensor lse = Tensor::empty({s.batch, s.heads, s.l1}, TensorOptions(options).with_dtype(DType::Float64));
    backend_for(q.device()).attention_fwd(s, q.view(), k.view(), v.view(), out.view(),
                                          static_cast<double*>(lse.view().data));
    if (!needs_graph({q_in, k_in, v_in})) return out;
    const Tensor o = out.detach();
    record(
        out, "flash_attention", {q_in, k_in, v_in},
        [s, q, k, v, o, lse](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            const Tensor dout = kernel_layout(g);
            const TensorOptions opts = g.options();
            Tensor dq = heads_view(s.batch, s.heads, s.l1, s.d, opts);
            Tensor dk = heads_view(s.batch, s.kv_heads, s.l2, s.d, opts);
            Tensor dv = heads_view(s.batch, s.kv_heads, s.l2, s.dv, opts);
            backend_for(g.device()).attention_bwd(s, q.view(), k.view(), v.view(), o.view(),
                                                  static_cast<const double*>(lse.view().data),
                                                  dout.view(), dq.view(), dk.view(), dv.view());
            return {dq, dk, dv};
        },
        {q, k, v, o, lse});
    return out;
}

}  // namespace latte::nn
