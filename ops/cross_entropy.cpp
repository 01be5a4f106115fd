#include "ops/cross_entropy.h"

#include <limits>

#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/index_checks.h"
#include "ops/movement.h"
#include "ops/reduce.h"

namespace latte {

// A backend kernel pair (Backend::cross_entropy_fwd/bwd): the forward keeps only the per-row
// log-sum-exp, never the (rows, C) log-probabilities, and the backward writes
// dx = g_row * (softmax(x) - onehot(target)) in one pass (a zero row at ignore_index).
// The reduction is composed from sum and mul on the per-row losses.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
    check_floating("cross_entropy", logits);
    LATTE_CHECK(logits.dim() >= 1, "cross_entropy: logits must have a class dim, got shape ",
                shape_str(logits.shape()));
    check_index_tensor("cross_entropy", "targets", targets, logits.device());
    const Shape batch(logits.shape().begin(), logits.shape().end() - 1);
    LATTE_CHECK(targets.shape() == batch, "cross_entropy: targets ", shape_str(targets.shape()),
                " must have the shape of logits ", shape_str(logits.shape()), " without its last dim, ",
                shape_str(batch));
    const int64_t classes = logits.size(-1), rows = shape_numel(batch);
    const Tensor tc = contiguous(targets.detach());
    const std::vector<int64_t> host = tc.to_vector<int64_t>();
    int64_t counted = 0;
    for (size_t i = 0; i < host.size(); ++i) {
        if (host[i] == ignore_index) continue;
        LATTE_CHECK(host[i] >= 0 && host[i] < classes, "cross_entropy: target ", host[i], " at index ",
                    index_str(batch, static_cast<int64_t>(i)), " is out of range [0, ", classes, ") for logits ",
                    shape_str(logits.shape()), " (ignore_index ", ignore_index, ")");
        ++counted;
    }
    const Tensor xc = contiguous(logits.detach());
    Tensor losses = Tensor::empty({rows}, logits.options());
    Tensor lse = Tensor::empty({rows}, TensorOptions(logits.options()).with_dtype(DType::Float64));
    if (rows > 0)
        backend_for(logits.device()).cross_entropy_fwd(losses.view().data, lse.view().data, xc.view().data,
                                                       static_cast<const int64_t*>(tc.view().data), logits.dtype(),
                                                       rows, classes, ignore_index);
    if (needs_graph({logits})) {
        // dx[r, c] = g[r] * (exp(x[r, c] - lse[r]) - (c == t[r])); 0 where t[r] == ignore_index
        const Shape in_shape = logits.shape();
        record(
            losses, "cross_entropy", {logits},
            [xc, lse, tc, rows, classes, ignore_index, in_shape](const Tensor& g,
                                                                 const std::vector<bool>&) -> std::vector<Tensor> {
                const Tensor gc = contiguous(g);
                Tensor dx = Tensor::empty(in_shape, g.options());
                if (rows > 0 && classes > 0)
                    backend_for(g.device()).cross_entropy_bwd(dx.view().data, xc.view().data, lse.view().data,
                                                              static_cast<const int64_t*>(tc.view().data),
                                                              gc.view().data, g.dtype(), rows, classes, ignore_index);
                return {dx};
            },
            {xc, lse, tc});
    }
    switch (reduction) {
        case Reduction::None: return reshape(losses, batch);
        case Reduction::Sum: return sum(losses);
        case Reduction::Mean:
            return mul(sum(losses), counted > 0 ? 1.0 / static_cast<double>(counted)
                                                : std::numeric_limits<double>::quiet_NaN());
    }
    return losses;
}

}  // namespace latte
