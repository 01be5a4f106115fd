#include "ops/embedding.h"

#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/index_checks.h"
#include "ops/movement.h"

namespace latte {

// Forward: out[i, :] = weight[ids[i], :] (Backend::gather_rows).
// dweight = scatter-add of g's rows into zeros (V, D) at ids (Backend::scatter_add_rows).
Tensor embedding(const Tensor& weight, const Tensor& ids) {
    check_floating("embedding", weight);
    LATTE_CHECK(weight.dim() == 2, "embedding: weight must be 2-D (V, D), got ", shape_str(weight.shape()));
    check_index_tensor("embedding", "ids", ids, weight.device());
    const int64_t vocab = weight.size(0), width = weight.size(1);
    const Tensor idc = contiguous(ids.detach());
    const std::vector<int64_t> host = idc.to_vector<int64_t>();
    for (size_t i = 0; i < host.size(); ++i)
        LATTE_CHECK(host[i] >= 0 && host[i] < vocab, "embedding: id ", host[i], " at index ",
                    index_str(ids.shape(), static_cast<int64_t>(i)), " is out of range [0, ", vocab, ") for weight ",
                    shape_str(weight.shape()));
    Shape out_shape = ids.shape();
    out_shape.push_back(width);
    const int64_t n = idc.numel();
    const Tensor wc = contiguous(weight.detach());
    Tensor out = Tensor::empty(out_shape, weight.options());
    if (n > 0 && width > 0)
        backend_for(weight.device()).gather_rows(out.view().data, wc.view().data, static_cast<const int64_t*>(idc.view().data),
                                                 weight.dtype(), n, width);
    if (needs_graph({weight})) {
        record(
            out, "embedding", {weight},
            [idc, vocab, width, n](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                const Tensor gc = contiguous(g);
                Tensor dw = zeros({vocab, width}, g.options());
                if (n > 0 && width > 0)
                    backend_for(g.device()).scatter_add_rows(dw.view().data, gc.view().data,
                                                             static_cast<const int64_t*>(idc.view().data), g.dtype(), n,
                                                             width);
                return {dw};
            },
            {idc});
    }
    return out;
}

}  // namespace latte
