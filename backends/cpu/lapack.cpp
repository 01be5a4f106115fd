// The only file that includes lapacke.h: thin SVD by divide and conquer (?gesdd), with the
// QR-iteration driver (?gesvd) as the fallback when divide and conquer does not converge.
// LAPACKE is loaded at first use, like OpenBLAS (blas.cpp): it brings its own copy of OpenBLAS
// through libblas.so.3, which must read the same OPENBLAS_CORETYPE.
#include <lapacke.h>

#include <cstring>
#include <string>
#include <type_traits>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/shared_library.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

struct Lapacke {
    decltype(&LAPACKE_sgesdd) sgesdd = nullptr;
    decltype(&LAPACKE_dgesdd) dgesdd = nullptr;
    decltype(&LAPACKE_sgesvd) sgesvd = nullptr;
    decltype(&LAPACKE_dgesvd) dgesvd = nullptr;
};

Lapacke load_lapacke() {
    void* handle = open_library("svd", {"liblapacke.so.3", "liblapacke.so"}, "liblapacke");
    Lapacke lib;
    bind_symbol(handle, "svd", "LAPACKE_sgesdd", lib.sgesdd);
    bind_symbol(handle, "svd", "LAPACKE_dgesdd", lib.dgesdd);
    bind_symbol(handle, "svd", "LAPACKE_sgesvd", lib.sgesvd);
    bind_symbol(handle, "svd", "LAPACKE_dgesvd", lib.dgesvd);
    return lib;  // the handle stays open for the life of the process
}

const Lapacke& lapacke() {
    static const Lapacke lib = load_lapacke();
    return lib;
}

template <class T>
lapack_int gesdd(lapack_int m, lapack_int n, T* a, T* s, T* u, T* vh) {
    const lapack_int k = std::min(m, n);
    if constexpr (std::is_same_v<T, float>)
        return lapacke().sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vh, n);
    else
        return lapacke().dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vh, n);
}

template <class T>
lapack_int gesvd(lapack_int m, lapack_int n, T* a, T* s, T* u, T* vh) {
    const lapack_int k = std::min(m, n);
    std::vector<T> superb(static_cast<size_t>(std::max<lapack_int>(k - 1, 1)));
    if constexpr (std::is_same_v<T, float>)
        return lapacke().sgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, k, vh, n, superb.data());
    else
        return lapacke().dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, k, vh, n, superb.data());
}

}  // namespace

void CpuBackend::svd(DType dtype, int64_t m, int64_t n, void* a, void* s, void* u, void* vh) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* in = static_cast<T*>(a);
        // gesdd destroys `a` even when it fails, so keep a copy for the fallback.
        const std::vector<T> saved(in, in + m * n);
        LATTE_CHECK(m <= std::numeric_limits<lapack_int>::max() && n <= std::numeric_limits<lapack_int>::max(),
                    "svd: a ", m, "x", n, " matrix has a side past what LAPACKE takes as lapack_int");
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
