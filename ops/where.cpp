#include "ops/where.h"

#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/movement.h"

namespace latte {

// da = where(cond, g, 0), db = where(cond, 0, g) (expand's backward sums broadcast dims)
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_defined(cond, "where", "cond");
    check_same_kind("where", a, b);
    check_floating("where", a);
    LATTE_CHECK(cond.device() == a.device(), "where: cond ", shape_str(cond.shape()), " is on ", cond.device().str(),
                " but a ", shape_str(a.shape()), " is on ", a.device().str());
    LATTE_CHECK(cond.dtype() == DType::Int64 || cond.dtype() == a.dtype(), "where: cond must be int64 or ",
                dtype_name(a.dtype()), " like a, got ", dtype_name(cond.dtype()), " ", shape_str(cond.shape()));
    const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    // int64 -> float keeps nonzero values nonzero, so the kernel needs one dtype only.
    const Tensor c = expand(cond.dtype() == a.dtype() ? cond.detach() : to(cond.detach(), a.dtype()), shape);
    Tensor ea = expand(a, shape), eb = expand(b, shape);
    Tensor out = Tensor::empty(shape, a.options());
    backend_for(a.device()).where(out.view(), c.view(), ea.detach().view(), eb.detach().view());
    if (needs_graph({ea, eb})) {
        record(
            out, "where", {ea, eb},
            [c](const Tensor& g, const std::vector<bool>& needs) -> std::vector<Tensor> {
                const Tensor z = zeros({}, g.options());
                return {needs[0] ? where(c, g, z) : Tensor(), needs[1] ? where(c, z, g) : Tensor()};
            },
            {c});
    }
    return out;
}

}  // namespace latte
