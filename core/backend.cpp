#include "core/backend.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace latte {

Backend& backend_for(Device device) {
    switch (device.type) {
        case DeviceType::CPU: return cpu_backend();
        case DeviceType::CUDA: {
            std::string why_not;
            Backend* backend = cuda_backend(device.index, &why_not);
            LATTE_CHECK(backend != nullptr, "device ", device.str(), ": ", why_not);
            return *backend;
        }
    }
    LATTE_FAIL("device: unknown device type");
}

void check_blas_gemm(const char* where, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                     int64_t ldb, int64_t ldc, int64_t batches) {
    constexpr int64_t limit = std::numeric_limits<int32_t>::max();
    LATTE_CHECK(m <= limit && n <= limit && k <= limit && lda <= limit && ldb <= limit && ldc <= limit &&
                    batches <= limit,
                where, ": a product of (", m, "x", k, ") and (", k, "x", n, ") with leading dimensions ", lda, ", ",
                ldb, ", ", ldc, " over ", batches, " batches has a size past 2^31 - 1, which this BLAS takes as "
                "a 32-bit int; split the product into smaller ones");
    const int64_t row_a = std::max<int64_t>(1, trans_a ? m : k), row_b = std::max<int64_t>(1, trans_b ? k : n);
    LATTE_CHECK(lda >= row_a && ldb >= row_b && ldc >= std::max<int64_t>(1, n), where, ": leading dimensions ", lda,
                ", ", ldb, ", ", ldc, " for a product of (", m, "x", k, ")", trans_a ? " (transposed)" : "", " and (",
                k, "x", n, ")", trans_b ? " (transposed)" : "", " are below the rows' lengths ", row_a, ", ", row_b,
                ", ", std::max<int64_t>(1, n), " (rows that overlap, e.g. an expanded tensor, must be copied first)");
}

void Backend::svd(DType, int64_t m, int64_t n, void*, void*, void*, void*) {
    LATTE_FAIL("svd: no SVD on this backend for a ", m, "x", n, " matrix; move the tensor to the CPU first");
}

void Backend::attention_fwd(const AttentionSizes&, const View&, const View&, const View&, const View&, double*) {
    LATTE_FAIL("attention: no fused attention kernel on this backend");
}

void Backend::attention_bwd(const AttentionSizes&, const View&, const View&, const View&, const View&, const double*,
                            const View&, const View&, const View&, const View&) {
    LATTE_FAIL("attention: no fused attention kernel on this backend");
}

void Backend::gather_rows(void*, const void*, const int64_t*, DType, int64_t n, int64_t cols) {
    LATTE_FAIL("embedding: no gather kernel on this backend (", n, " rows of ", cols, ")");
}

void Backend::scatter_add_rows(void*, const void*, const int64_t*, DType, int64_t n, int64_t cols) {
    LATTE_FAIL("embedding: no scatter-add kernel on this backend (", n, " rows of ", cols, ")");
}

void Backend::cross_entropy_fwd(void*, void*, const void*, const int64_t*, DType, int64_t rows, int64_t cols, int64_t) {
    LATTE_FAIL("cross_entropy: no kernel on this backend for [", rows, ",", cols, "] logits");
}

void Backend::cross_entropy_bwd(void*, const void*, const void*, const int64_t*, const void*, DType, int64_t rows,
                                int64_t cols, int64_t) {
    LATTE_FAIL("cross_entropy: no backward kernel on this backend for [", rows, ",", cols, "] logits");
}

void Backend::norm_fwd(NormKind kind, void*, void*, void*, const void*, const void*, const void*, DType, int64_t rows,
                       int64_t cols, double) {
    LATTE_FAIL(kind == NormKind::Rms ? "rms_norm" : "layer_norm", ": no kernel on this backend for [", rows, ",", cols,
               "]");
}

void Backend::norm_bwd(NormKind kind, void*, const void*, const void*, const void*, const void*, const void*, DType,
                       int64_t rows, int64_t cols) {
    LATTE_FAIL(kind == NormKind::Rms ? "rms_norm" : "layer_norm", ": no backward kernel on this backend for [", rows,
               ",", cols, "]");
}

void Backend::where(const View& dst, const View&, const View&, const View&) {
    LATTE_FAIL("where: no kernel on this backend for shape ", shape_str(dst.shape));
}

void Backend::rope_rotate(void*, const void*, const void*, const void*, DType, int64_t outer, int64_t length,
                          int64_t heads, int64_t d, bool) {
    LATTE_FAIL("rope: no fused kernel on this backend ([", outer, ",", length, ",", heads, ",", d, "])");
}

double Backend::squared_error_sum(const void*, const void*, DType, int64_t n) {
    LATTE_FAIL("mse_loss: no fused kernel on this backend (", n, " elements)");
}

void Backend::squared_error_grad(void*, const void*, const void*, double, DType, int64_t n) {
    LATTE_FAIL("mse_loss: no fused backward kernel on this backend (", n, " elements)");
}

void Backend::swiglu_fwd(void*, const void*, const void*, DType, int64_t n) {
    LATTE_FAIL("swiglu: no fused kernel on this backend (", n, " elements)");
}

void Backend::swiglu_bwd(void*, void*, const void*, const void*, const void*, DType, int64_t n) {
    LATTE_FAIL("swiglu: no fused backward kernel on this backend (", n, " elements)");
}

Device Device::parse(const std::string& text) {
    if (text == "cpu") return Device::cpu();
    if (text == "cuda") return Device::cuda(0);
    if (text.rfind("cuda:", 0) == 0) {
        const std::string index = text.substr(5);
        LATTE_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
                    "device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
        return Device::cuda(std::stoi(index));
    }
    LATTE_FAIL("device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
}

}  // namespace latte
