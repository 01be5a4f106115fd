#include "ops/norm.h"

#include <cmath>

#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/movement.h"
#include "ops/reduce.h"

namespace latte {
namespace {

void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x) {
    if (!p.defined()) return;
    check_same_kind(op, x, p);
    LATTE_CHECK(p.dim() == 1 && p.size(0) == x.size(-1), op, ": ", what, " ", shape_str(p.shape()),
                " must be 1-D of x's last dim (", x.size(-1), "); x is ", shape_str(x.shape()));
}

const void* data_or_null(const Tensor& t) { return t.defined() ? t.view().data : nullptr; }

// The kernels see contiguous [rows, D] matrices. Forward saves mean (Layer) and rstd per row.
// dx comes from Backend::norm_bwd:
//   dx = rstd * (gw - [Layer] mean(gw) - xhat * mean(gw * xhat)),  gw = g * weight
// and the parameter gradients are reductions over rows, composed from ops:
//   dweight = sum_rows(g * xhat), dbias = sum_rows(g),  xhat = (x - mean) * rstd.
Tensor norm(NormKind kind, const char* name, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
    check_floating(name, x);
    LATTE_CHECK(x.dim() >= 1 && x.size(-1) > 0, name, ": x must have a nonempty last dim, got ",
                shape_str(x.shape()));
    LATTE_CHECK(std::isfinite(eps) && eps >= 0, name, ": eps must be finite and >= 0, got ", eps);
    check_param(name, "weight", weight, x);
    check_param(name, "bias", bias, x);
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    const Tensor xc = contiguous(x.detach());
    const Tensor wc = weight.defined() ? contiguous(weight.detach()) : Tensor();
    const Tensor bc = bias.defined() ? contiguous(bias.detach()) : Tensor();
    Tensor y = Tensor::empty(x.shape(), x.options());
    Tensor rstd = Tensor::empty({rows}, x.options());
    Tensor mean = kind == NormKind::Layer ? Tensor::empty({rows}, x.options()) : Tensor();
    if (rows > 0)
        backend_for(x.device()).norm_fwd(kind, y.view().data, kind == NormKind::Layer ? mean.view().data : nullptr,
                                         rstd.view().data, xc.view().data, data_or_null(wc), data_or_null(bc),
                                         x.dtype(), rows, cols, eps);
    if (needs_graph({x, weight, bias})) {
        const Shape in_shape = x.shape();
        record(
            y, name, {x, weight, bias},
            [kind, xc, wc, mean, rstd, rows, cols, in_shape](const Tensor& g,
                                                            const std::vector<bool>& needs) -> std::vector<Tensor> {
                std::vector<Tensor> grads(3);
                const Tensor gc = contiguous(g);
                if (needs[0]) {
                    Tensor dx = Tensor::empty(in_shape, g.options());
                    if (rows > 0)
                        backend_for(g.device()).norm_bwd(kind, dx.view().data, gc.view().data, xc.view().data,
                                                         data_or_null(wc), data_or_null(mean), rstd.view().data,
                                                         g.dtype(), rows, cols);
                    grads[0] = dx;
                }
                const Tensor g2 = reshape(gc, {rows, cols});
                if (needs[1]) {
                    Tensor centred = reshape(xc, {rows, cols});
                    if (kind == NormKind::Layer) centred = sub(centred, unsqueeze(mean, 1));
                    const Tensor xhat = mul(centred, unsqueeze(rstd, 1));
                    grads[1] = sum(mul(g2, xhat), {0});
                }
                if (needs[2]) grads[2] = sum(g2, {0});
                return grads;
            },
            {xc, wc, mean, rstd});
    }
    return y;
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
    return norm(NormKind::Rms, "rms_norm", x, weight, Tensor(), eps);
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
    return norm(NormKind::Layer, "layer_norm", x, weight, bias, eps);
}

}  // namespace latte
