#include "ops/softmax.h"

#include <numeric>

#include "core/node.h"
#include "ops/checks.h"
#include "ops/movement.h"

namespace latte {
namespace {

// The backend kernels work on contiguous rows; other dims are moved last and back again.
std::vector<int64_t> dim_last_order(int64_t ndim, int64_t dim) {
    std::vector<int64_t> order;
    for (int64_t i = 0; i < ndim; ++i)
        if (i != dim) order.push_back(i);
    order.push_back(dim);
    return order;
}

std::vector<int64_t> inverse_order(const std::vector<int64_t>& order) {
    std::vector<int64_t> inv(order.size());
    for (size_t i = 0; i < order.size(); ++i) inv[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
    return inv;
}

Tensor rows_last(const Tensor& x, int64_t dim) {
    if (dim == x.dim() - 1 || x.dim() == 0) return contiguous(x);
    return contiguous(permute(x, dim_last_order(x.dim(), dim)));
}

Tensor restore(const Tensor& rows, int64_t dim, int64_t ndim) {
    if (dim == ndim - 1 || ndim == 0) return rows;
    return permute(rows, inverse_order(dim_last_order(ndim, dim)));
}

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
    check_floating(name, x);
    dim = normalize_dim(dim, x.dim(), name);
    const int64_t ndim = x.dim();
    Tensor xr = rows_last(x.detach(), dim);
    const int64_t cols = ndim == 0 ? 1 : x.size(dim);
    const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
    Tensor yr = Tensor::empty(xr.shape(), x.options());
    if (x.numel() > 0) backend_for(x.device()).softmax_fwd(yr.view().data, xr.view().data, x.dtype(), rows, cols, log);
    Tensor out = restore(yr, dim, ndim).detach();
    if (needs_graph({x})) {
        // softmax: dx = y * (dy - sum(dy * y, dim)); log-softmax: dx = dy - exp(y) * sum(dy, dim)
        record(out, name, {x}, [yr, dim, ndim, rows, cols, log](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            Tensor gr = rows_last(g, dim);
            Tensor dxr = Tensor::empty(gr.shape(), g.options());
            if (g.numel() > 0)
                backend_for(g.device()).softmax_bwd(dxr.view().data, yr.view().data, gr.view().data, g.dtype(), rows,
                                                    cols, log);
            return {restore(dxr, dim, ndim)};
        }, {yr});
    }
    return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace latte
