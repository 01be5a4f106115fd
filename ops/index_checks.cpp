#include "ops/index_checks.h"

namespace latte {

std::string index_str(const Shape& shape, int64_t flat) {
    Shape index(shape.size(), 0);
    for (size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return shape_str(index);
}

void check_index_tensor(const char* op, const char* what, const Tensor& t, Device device) {
    check_defined(t, op, what);
    LATTE_CHECK(t.dtype() == DType::Int64, op, ": ", what, " must be int64, got ", dtype_name(t.dtype()), " ",
                shape_str(t.shape()));
    LATTE_CHECK(t.device() == device, op, ": ", what, " ", shape_str(t.shape()), " is on ", t.device().str(),
                ", expected ", device.str());
}

}  // namespace latte
