#include "nn/chunked_attention.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/node.h"
#include "nn/attention.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

// One mask for every block, built once per call (not once per block: on a GPU each build is a
// host upload). Row r of block r0 may see key j iff j <= r0 + r + L2 - L1; as columns
// [L1 - r0, L1 - r0 + L2) of an (L1, L1 + L2) causal mask, that is j + L1 - r0 <= r + L2.
Tensor block_mask(const Tensor& q, const Tensor& k, int64_t block) {
    const int64_t l1 = q.size(-2), l2 = k.size(-2);
    return causal_mask(l1, l1 + l2, q.options(), 0, std::min(block, l1));  // (min(block, L1), L1 + L2)
}

// Scaled scores of query rows [r0, r0 + rows) against every key, plus the causal mask when given.
Tensor block_scores(const Tensor& q, const Tensor& k, double scale, const Tensor& mask, int64_t r0, int64_t rows) {
    Tensor s = matmul(mul(narrow(q, -2, r0, rows), scale), transpose(k, -1, -2));  // (..., rows, L2)
    if (mask.defined()) s = add(s, narrow(narrow(mask, 0, 0, rows), 1, q.size(-2) - r0, k.size(-2)));
    return s;
}

}  // namespace

Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                         int64_t block) {
    check_defined(q, "chunked attention", "q");
    check_defined(k, "chunked attention", "k");
    check_defined(v, "chunked attention", "v");
    LATTE_CHECK(block > 0 && q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2 && q.size(-1) == k.size(-1) &&
                    k.size(-2) == v.size(-2),
                "chunked attention: q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ",
                shape_str(v.shape()), " do not fit (need q (..,L1,d), k (..,L2,d), v (..,L2,dv)), block ", block);
    const int64_t l1 = q.size(-2), l2 = k.size(-2);
    LATTE_CHECK(!causal || l1 <= l2, "chunked attention: a causal mask needs L1 <= L2, got L1=", l1, " L2=", l2);
    const Tensor qd = q.detach(), kd = k.detach(), vd = v.detach();
    std::vector<Tensor> outs;
    Tensor mask;
    {
        NoGradGuard no_grad;
        if (causal && l1 > 0) mask = block_mask(qd, kd, block);
        for (int64_t r0 = 0; r0 < l1; r0 += block) {
            const int64_t rows = std::min(block, l1 - r0);
            Tensor p = softmax(block_scores(qd, kd, scale, mask, r0, rows), -1);  // (..., rows, L2)
            outs.push_back(matmul(p, vd));                                           // (..., rows, dv)
        }
    }
    Tensor out = outs.size() == 1 ? outs[0] : cat(outs, -2);
    if (!needs_graph({q, k, v})) return out;
    const Tensor saved_out = out.detach();
    record(out, "chunked_attention", {q, k, v},
           [qd, kd, vd, saved_out, mask, scale, block, l1](const Tensor& g,
                                                            const std::vector<bool>& needs) -> std::vector<Tensor> {
               // Per block, P recomputed by the fused softmax: dV += P^T dO;
               // dS = P * (dO V^T - rowsum(dO * O)); dQ = dS K scale; dK += dS^T Q scale.
               const Tensor delta = sum(mul(g, saved_out), {-1}, true);  // (..., L1, 1)
               std::vector<Tensor> dq_blocks;
               Tensor dk, dv;
               for (int64_t r0 = 0; r0 < l1; r0 += block) {
                   const int64_t rows = std::min(block, l1 - r0);
                   Tensor p = softmax(block_scores(qd, kd, scale, mask, r0, rows), -1);
                   Tensor go = narrow(g, -2, r0, rows);
                   Tensor ds = mul(p, sub(matmul(go, transpose(vd, -1, -2)), narrow(delta, -2, r0, rows)));
                   if (needs[0]) dq_blocks.push_back(mul(matmul(ds, kd), scale));
                   if (needs[1]) {
                       Tensor part = mul(matmul(transpose(ds, -1, -2), narrow(qd, -2, r0, rows)), scale);
                       dk = dk.defined() ? add(dk, part) : part;
                   }
                   if (needs[2]) {
                       Tensor part = matmul(transpose(p, -1, -2), go);
                       dv = dv.defined() ? add(dv, part) : part;
                   }
               }
               Tensor dq;
               if (needs[0]) dq = sum_to(dq_blocks.size() == 1 ? dq_blocks[0] : cat(dq_blocks, -2), qd.shape());
               if (needs[1]) dk = sum_to(dk, kd.shape());
               if (needs[2]) dv = sum_to(dv, vd.shape());
               return {dq, dk, dv};
           },
           {qd, kd, vd, saved_out});
    return out;
}

}  // namespace latte::nn
