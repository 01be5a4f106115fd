// CPU memory, copy, fill and the pointwise kernels.
#include <cstdlib>
#include <cstring>

#include "backends/common/caching_allocator.h"
#include "backends/common/pointwise.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/strided.h"
#include "backends/cpu/vector_math.h"
#include "core/error.h"

namespace latte {

Backend& cpu_backend() {
    static cpu::CpuBackend backend;
    return backend;
}

namespace cpu {
namespace {

template <class To, class From>
void copy_typed(const View& dst, const View& src) {
    auto plan = make_plan<2>(dst.shape, {&dst.strides, &src.strides});
    To* d = static_cast<To*>(dst.data);
    const From* s = static_cast<const From*>(src.data);
    parallel_spans(plan, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) {
        To* dp = d + off[0];
        const From* sp = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
            for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<To>(sp[i]);
        } else {
            for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = static_cast<To>(sp[i * st[1]]);
        }
    });
}

}  // namespace

namespace {

// 64-byte aligned blocks for vector loads (aligned_alloc needs a multiple of the alignment).
void* aligned_block(std::size_t bytes) { return std::aligned_alloc(64, (bytes + 63) / 64 * 64); }

// Large blocks are cached: without it each step's big activations come back from the kernel as
// fresh zeroed pages, and page faults cost more than the math (Part 13: 1.7 s -> 0.9 s).
// LATTE_CPU_CACHE_MB caps the cache (default 2048; 0 turns it off, as sanitizer builds do so
// that a use after free is still caught).
CachingAllocator& host_allocator() {
    // Never destroyed: tensors in other statics may free their storage during exit. The variable
    // is read once; a bad value throws from every allocation until it is fixed.
    static auto* allocator = [] {
#ifdef LATTE_NO_ALLOCATOR_CACHE
        const std::size_t limit = 0;
#else
        const std::size_t limit = CachingAllocator::limit_from_env("LATTE_CPU_CACHE_MB", 2048);
#endif
        return new CachingAllocator(aligned_block, std::free, limit, 256 << 10);
    }();
    return *allocator;
}

}  // namespace

void* CpuBackend::allocate(std::size_t bytes) {
    void* ptr = host_allocator().allocate(bytes);
    LATTE_CHECK(ptr != nullptr, "cpu: out of memory allocating ", bytes, " bytes");
    return ptr;
}

void CpuBackend::deallocate(void* ptr, std::size_t bytes) { host_allocator().deallocate(ptr, bytes); }

void CpuBackend::empty_cache() { host_allocator().empty_cache(); }

std::size_t CpuBackend::cached_bytes() const { return host_allocator().cached_bytes(); }

std::size_t CpuBackend::system_allocations() const { return host_allocator().system_allocations(); }

void CpuBackend::copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
    std::memcpy(host_dst, src, bytes);
}

void CpuBackend::copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
    std::memcpy(dst, host_src, bytes);
}

void CpuBackend::copy(const View& dst, const View& src) {
    dispatch_all(dst.dtype, [&](auto* to) {
        using To = std::remove_pointer_t<decltype(to)>;
        dispatch_all(src.dtype, [&](auto* from) {
            using From = std::remove_pointer_t<decltype(from)>;
            copy_typed<To, From>(dst, src);
        });
    });
}

void CpuBackend::fill(const View& dst, double value) {
    LATTE_CHECK(dst.dtype != DType::Int64 || (value == std::trunc(value) && std::fabs(value) < 0x1p63), "fill: ",
                value, " is not an int64 value");
    dispatch_all(dst.dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto plan = make_plan<1>(dst.shape, {&dst.strides});
        T* d = static_cast<T*>(dst.data);
        const T v = static_cast<T>(value);
        parallel_spans(plan, [&](const std::array<int64_t, 1>& off, const std::array<int64_t, 1>& st, int64_t n) {
            for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
        });
    });
}

void CpuBackend::unary(UnaryOp op, double alpha, const View& dst, const View& src) {
    dispatch(dst.dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto plan = make_plan<2>(dst.shape, {&dst.strides, &src.strides});
        T* d = static_cast<T*>(dst.data);
        const T* s = static_cast<const T*>(src.data);
        const T a = static_cast<T>(alpha);
        parallel_spans(plan, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) {
            T* dp = d + off[0];
            const T* sp = s + off[1];
            const int sigmoid_kind = op == UnaryOp::Sigmoid ? 0 : op == UnaryOp::Silu ? 1 : op == UnaryOp::SiluGrad ? 2 : -1;
            if constexpr (std::is_same_v<T, float>) {
                if (st[0] == 1 && st[1] == 1 && sigmoid_kind >= 0) {
                    sigmoid_family(sigmoid_kind, dp, sp, n);  // vectorized (vector_math.h)
                    return;
                }
            }
            if (st[0] == 1 && st[1] == 1) {
                for (int64_t i = 0; i < n; ++i) dp[i] = apply_unary<T>(op, sp[i], a);
            } else {
                for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = apply_unary<T>(op, sp[i * st[1]], a);
            }
        });
    });
}

void CpuBackend::binary(BinaryOp op, const View& dst, const View& a, const View& b) {
    dispatch(dst.dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto plan = make_plan<3>(dst.shape, {&dst.strides, &a.strides, &b.strides});
        T* d = static_cast<T*>(dst.data);
        const T* pa = static_cast<const T*>(a.data);
        const T* pb = static_cast<const T*>(b.data);
        parallel_spans(plan, [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st, int64_t n) {
            T* dp = d + off[0];
            const T* ap = pa + off[1];
            const T* bp = pb + off[2];
            if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                // The common ops get their own loops so the compiler vectorises them.
                switch (op) {
                    case BinaryOp::Add: for (int64_t i = 0; i < n; ++i) dp[i] = ap[i] + bp[i]; return;
                    case BinaryOp::Sub: for (int64_t i = 0; i < n; ++i) dp[i] = ap[i] - bp[i]; return;
                    case BinaryOp::Mul: for (int64_t i = 0; i < n; ++i) dp[i] = ap[i] * bp[i]; return;
                    case BinaryOp::Div: for (int64_t i = 0; i < n; ++i) dp[i] = ap[i] / bp[i]; return;
                    case BinaryOp::Eq:
                    case BinaryOp::Gt: break;
                }
                for (int64_t i = 0; i < n; ++i) dp[i] = apply_binary<T>(op, ap[i], bp[i]);
            } else if (st[0] == 1 && (st[1] == 0) != (st[2] == 0) && (st[1] == 1 || st[2] == 1)) {
                // One operand broadcast along the span (a per-row scale, say): the same loops with
                // that operand's one value.
                const bool a_fixed = st[1] == 0;
                const T x = a_fixed ? ap[0] : bp[0];
                const T* v = a_fixed ? bp : ap;
                switch (op) {
                    case BinaryOp::Add: for (int64_t i = 0; i < n; ++i) dp[i] = v[i] + x; return;
                    case BinaryOp::Mul: for (int64_t i = 0; i < n; ++i) dp[i] = v[i] * x; return;
                    case BinaryOp::Sub:
                        if (a_fixed) for (int64_t i = 0; i < n; ++i) dp[i] = x - v[i];
                        else for (int64_t i = 0; i < n; ++i) dp[i] = v[i] - x;
                        return;
                    case BinaryOp::Div:
                        if (a_fixed) for (int64_t i = 0; i < n; ++i) dp[i] = x / v[i];
                        else for (int64_t i = 0; i < n; ++i) dp[i] = v[i] / x;
                        return;
                    case BinaryOp::Eq:
                    case BinaryOp::Gt: break;
                }
                for (int64_t i = 0; i < n; ++i) dp[i] = apply_binary<T>(op, ap[i * st[1]], bp[i * st[2]]);
            } else {
                for (int64_t i = 0; i < n; ++i)
                    dp[i * st[0]] = apply_binary<T>(op, ap[i * st[1]], bp[i * st[2]]);
            }
        });
    });
}

}  // namespace cpu
}  // namespace latte
