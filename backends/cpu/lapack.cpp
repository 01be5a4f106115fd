// The only file that includes lapacke.h: thin SVD by divide and conquer (?gesdd), with the
// QR-iteration driver (?gesvd) as the fallback when divide and conquer does not converge.
#include <lapacke.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

template <class T>
lapack_int gesdd(lapack_int m, lapack_int n, T* a, T* s, T* u, T* vh) {
    const lapack_int k = std::min(m, n);
    if constexpr (std::is_same_v<T, float>)
        return LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vh, n);
    else
        return LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vh, n);
}

template <class T>
lapack_int gesvd(lapack_int m, lapack_int n, T* a, T* s, T* u, T* vh) {
    const lapack_int k = std::min(m, n);
    std::vector<T> superb(static_cast<size_t>(std::max<lapack_int>(k - 1, 1)));
    if constexpr (std::is_same_v<T, float>)
        return LAPACKE_sgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, k, vh, n, superb.data());
    else
        return LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, k, vh, n, superb.data());
}

}  // namespace

void CpuBackend::svd(DType dtype, int64_t m, int64_t n, void* a, void* s, void* u, void* vh) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* in = static_cast<T*>(a);
        // gesdd destroys `a` even when it fails, so keep a copy for the fallback.
        const std::vector<T> saved(in, in + m * n);
        const auto lm = static_cast<lapack_int>(m), ln = static_cast<lapack_int>(n);
        lapack_int info = gesdd<T>(lm, ln, in, static_cast<T*>(s), static_cast<T*>(u), static_cast<T*>(vh));
        LATTE_CHECK(info >= 0, "svd: LAPACKE ?gesdd rejected argument ", -info, " for a ", m, "x", n, " matrix");
        if (info > 0) {
            std::memcpy(in, saved.data(), saved.size() * sizeof(T));
            info = gesvd<T>(lm, ln, in, static_cast<T*>(s), static_cast<T*>(u), static_cast<T*>(vh));
            LATTE_CHECK(info == 0, "svd: neither ?gesdd nor ?gesvd converged for a ", m, "x", n,
                        " matrix (LAPACK info ", info, ")");
        }
    });
}

}  // namespace latte::cpu
