#include "backends/cuda/cuda_backend.h"

#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels.h"
#include "core/cuda.h"

namespace latte {
namespace cuda_detail {
namespace {

// Offsets o[i] = o[0] + i * stride for one stride (0 allowed): then one strided-batched call does.
bool evenly_spaced(const std::vector<int64_t>& offsets, int64_t& stride) {
    stride = offsets.size() > 1 ? offsets[1] - offsets[0] : 0;
    for (size_t i = 1; i < offsets.size(); ++i)
        if (offsets[i] - offsets[i - 1] != stride) return false;
    return true;
}

// Device memory from the backend's caching allocator for the length of one call. Handing it
// back before the queued kernels ran is safe: its next user queues after them, on the same stream.
class Scratch {
public:
    Scratch(CudaBackend& backend, std::size_t bytes) : backend_(backend), bytes_(bytes) {
        if (bytes_) ptr_ = backend_.allocate(bytes_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() {
        if (ptr_) backend_.deallocate(ptr_, bytes_);
    }
    void* get() const { return ptr_; }

private:
    CudaBackend& backend_;
    std::size_t bytes_;
    void* ptr_ = nullptr;
};

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first.
template <class T>
void gemm_typed(CudaBackend& backend, cublasHandle_t handle, HostStaging& staging, cudaStream_t stream,
                const GemmArgs& g) {
    check_blas_gemm("matmul (cuBLAS)", g.trans_a, g.trans_b, g.m, g.n, g.k, g.lda, g.ldb, g.ldc,
                    static_cast<int64_t>(g.c_offsets.size()));
    const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
    const int lda = static_cast<int>(g.lda), ldb = static_cast<int>(g.ldb), ldc = static_cast<int>(g.ldc);
    const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
    const T* a = static_cast<const T*>(g.a);
    const T* b = static_cast<const T*>(g.b);
    T* c = static_cast<T*>(g.c);
    const int batches = static_cast<int>(g.c_offsets.size());
    int64_t sa = 0, sb = 0, sc = 0;
    if (evenly_spaced(g.a_offsets, sa) && evenly_spaced(g.b_offsets, sb) && evenly_spaced(g.c_offsets, sc)) {
        const T* a0 = a + g.a_offsets[0];
        const T* b0 = b + g.b_offsets[0];
        T* c0 = c + g.c_offsets[0];
        if constexpr (std::is_same_v<T, float>)
            LATTE_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, tb, ta, n, m, k, &alpha, b0, ldb, sb, a0, lda, sa,
                                                         &beta, c0, ldc, sc, batches));
        else
            LATTE_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, tb, ta, n, m, k, &alpha, b0, ldb, sb, a0, lda, sa,
                                                         &beta, c0, ldc, sc, batches));
        return;
    }
    // Irregular batches (e.g. products of permuted heads): one pointer-array batched call. cuBLAS
    // reads the arrays from device memory, so they go up through the pinned staging, in stream order.
    std::vector<const T*> pointers(3 * static_cast<size_t>(batches));
    const T** first = pointers.data();   // cuBLAS's A: our B
    const T** second = first + batches;  // cuBLAS's B: our A
    const T** out = second + batches;    // C (cast back to T* below)
    for (size_t i = 0; i < static_cast<size_t>(batches); ++i) {
        first[i] = b + g.b_offsets[i];
        second[i] = a + g.a_offsets[i];
        out[i] = c + g.c_offsets[i];
    }
    const std::size_t bytes = pointers.size() * sizeof(const T*);
    Scratch arrays(backend, bytes);
    staging.upload(arrays.get(), pointers.data(), bytes, stream);
    char* base = static_cast<char*>(arrays.get());
    const auto* d_first = reinterpret_cast<const T* const*>(base);
    const auto* d_second = reinterpret_cast<const T* const*>(base + static_cast<size_t>(batches) * sizeof(T*));
    const auto* d_out = reinterpret_cast<T* const*>(base + 2 * static_cast<size_t>(batches) * sizeof(T*));
    if constexpr (std::is_same_v<T, float>)
        LATTE_CUBLAS_CHECK(cublasSgemmBatched(handle, tb, ta, n, m, k, &alpha, d_first, ldb, d_second, lda, &beta,
                                              d_out, ldc, batches));
    else
        LATTE_CUBLAS_CHECK(cublasDgemmBatched(handle, tb, ta, n, m, k, &alpha, d_first, ldb, d_second, lda, &beta,
                                              d_out, ldc, batches));
}

}  // namespace

CudaBackend::CudaBackend(int device) : device_(device) {
    activate();
    LATTE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LATTE_CUBLAS_CHECK(cublasCreate(&cublas_));
    LATTE_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    allocator_ = std::make_unique<CachingAllocator>(
        [this](std::size_t bytes) -> void* {
            activate();
            void* ptr = nullptr;
            if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
                (void)cudaGetLastError();  // clear the sticky out-of-memory error
                return nullptr;
            }
            return ptr;
        },
        [this](void* ptr) {
            activate();
            LATTE_CUDA_CHECK(cudaFree(ptr));
        },
        // Keep up to 16 GiB of freed blocks (LATTE_CUDA_CACHE_MB; 0 turns the cache off, for
        // compute-sanitizer): every size a training step uses, so the loop never calls
        // cudaMalloc/cudaFree after its first step. Every request is cached (min 0).
        CachingAllocator::limit_from_env("LATTE_CUDA_CACHE_MB", 16384), 0);
}

CudaBackend::~CudaBackend() {
    allocator_->empty_cache();
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
}

void CudaBackend::activate() const { LATTE_CUDA_CHECK(cudaSetDevice(device_)); }

void* CudaBackend::allocate(std::size_t bytes) {
    void* ptr = allocator_->allocate(bytes);
    LATTE_CHECK(ptr != nullptr, "cuda:", device_, ": out of memory allocating ", bytes, " bytes (",
                allocator_->cached_bytes(), " bytes cached)");
    return ptr;
}

void CudaBackend::deallocate(void* ptr, std::size_t bytes) {
    // Stream order makes reuse safe: the next user of this block queues after every kernel
    // that may still read it, on the same stream.
    allocator_->deallocate(ptr, bytes);
}

void CudaBackend::empty_cache() {
    synchronize();
    allocator_->empty_cache();
}

std::size_t CudaBackend::cached_bytes() const { return allocator_->cached_bytes(); }

std::size_t CudaBackend::system_allocations() const { return allocator_->system_allocations(); }

void CudaBackend::synchronize() {
    activate();
    LATTE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

std::shared_ptr<void> CudaBackend::record_marker() {
    activate();
    cudaEvent_t event = nullptr;
    LATTE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    std::shared_ptr<void> marker(event, [](void* e) { (void)cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
    LATTE_CUDA_CHECK(cudaEventRecord(event, stream_));
    return marker;
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
    activate();
    LATTE_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    LATTE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
    activate();
    staging_.upload(dst, host_src, bytes, stream_);  // no stall for small uploads (host_staging.h)
}

void CudaBackend::copy(const View& dst, const View& src) {
    activate();
    launch_copy(dst, src, stream_);
}

void CudaBackend::fill(const View& dst, double value) {
    activate();
    launch_fill(dst, value, stream_);
}

void CudaBackend::fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std) {
    activate();
    launch_fill_normal(dst, dtype, n, state, mean, std, stream_);
}

void CudaBackend::fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high) {
    activate();
    launch_fill_uniform(dst, dtype, n, state, low, high, stream_);
}

void CudaBackend::unary(UnaryOp op, double alpha, const View& dst, const View& src) {
    activate();
    launch_unary(op, alpha, dst, src, stream_);
}

void CudaBackend::binary(BinaryOp op, const View& dst, const View& a, const View& b) {
    activate();
    launch_binary(op, dst, a, b, stream_);
}

void CudaBackend::reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size,
                         int64_t inner) {
    activate();
    const int64_t parts = reduce_parts(outer, size, inner);
    Scratch partials(*this, parts > 1 ? static_cast<std::size_t>(outer * parts * inner) * sizeof(double) : 0);
    launch_reduce(op, dst, src, dtype, outer, size, inner, parts, static_cast<double*>(partials.get()), stream_);
}

bool CudaBackend::supports_bf16_products(std::string* why_not) {
    if (why_not) *why_not = "the CUDA backend has no bf16 products yet (cublasGemmEx is planned)";
    return false;
}

void CudaBackend::gemm(const GemmArgs& g) {
    LATTE_CHECK(!g.bf16, "cuda: gemm: bf16 products are not on the CUDA backend yet");
    if (g.c_offsets.empty() || g.m == 0 || g.n == 0) return;
    activate();
    LATTE_CHECK(g.m <= 0x7fffffff && g.n <= 0x7fffffff && g.k <= 0x7fffffff, "cuda: gemm of ", g.m, "x", g.k, " by ",
                g.k, "x", g.n, " exceeds cuBLAS's int sizes");
    if (g.k == 0) {  // cuBLAS needs k >= 1; the product is zero (times beta*C, which is 0 here)
        LATTE_CHECK(g.beta == 0.0, "cuda: gemm with k = 0 and beta != 0 is not supported");
        for (int64_t off : g.c_offsets) {
            const std::size_t elem = dtype_size(g.dtype);
            View c{static_cast<char*>(g.c) + off * static_cast<int64_t>(elem), {g.m, g.n}, {g.ldc, 1}, g.dtype};
            launch_fill(c, 0.0, stream_);
        }
        return;
    }
    const bool tf32 = cuda::allow_tf32() && g.dtype == DType::Float32;
    LATTE_CUBLAS_CHECK(cublasSetMathMode(cublas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    switch (g.dtype) {
        case DType::Float32: gemm_typed<float>(*this, cublas_, staging_, stream_, g); return;
        case DType::Float64: gemm_typed<double>(*this, cublas_, staging_, stream_, g); return;
        case DType::Int64: break;
    }
    LATTE_FAIL("matmul: no cuBLAS gemm for int64");
}

void CudaBackend::adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v) {
    activate();
    launch_adam_step(step, dtype, n, p, g, m, v, stream_);
}

void CudaBackend::softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log) {
    activate();
    launch_softmax_fwd(y, x, dtype, rows, cols, log, stream_);
}

void CudaBackend::softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols,
                              bool log) {
    activate();
    launch_softmax_bwd(dx, y, dy, dtype, rows, cols, log, stream_);
}

void CudaBackend::gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols) {
    activate();
    launch_gather_rows(dst, src, ids, dtype, n, cols, stream_);
}

void CudaBackend::scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n,
                                   int64_t cols) {
    activate();
    launch_scatter_add_rows(dst, src, ids, dtype, n, cols, stream_);
}

void CudaBackend::cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                                    int64_t rows, int64_t cols, int64_t ignore_index) {
    activate();
    launch_cross_entropy_fwd(loss, lse, logits, targets, dtype, rows, cols, ignore_index, stream_);
}

void CudaBackend::cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets,
                                    const void* g, DType dtype, int64_t rows, int64_t cols, int64_t ignore_index) {
    activate();
    launch_cross_entropy_bwd(dx, logits, lse, targets, g, dtype, rows, cols, ignore_index, stream_);
}

void CudaBackend::norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight,
                           const void* bias, DType dtype, int64_t rows, int64_t cols, double eps) {
    activate();
    launch_norm_fwd(kind, y, mean, rstd, x, weight, bias, dtype, rows, cols, eps, stream_);
}

void CudaBackend::norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight,
                           const void* mean, const void* rstd, DType dtype, int64_t rows, int64_t cols) {
    activate();
    launch_norm_bwd(kind, dx, dy, x, weight, mean, rstd, dtype, rows, cols, stream_);
}

void CudaBackend::where(const View& dst, const View& cond, const View& a, const View& b) {
    activate();
    launch_where(dst, cond, a, b, stream_);
}

}  // namespace cuda_detail

// ---- the link-time hooks of core/backend.h ----

namespace {

struct Devices {
    std::once_flag probed;
    int count = 0;
    std::string why_not;
    std::mutex mutex;
    std::vector<cuda_detail::CudaBackend*> backends;  // created on first use, never destroyed
};

// Backends outlive every tensor (some live in statics), so they are never destroyed.
Devices& devices() {
    static auto* d = new Devices;
    std::call_once(d->probed, [] {
        const cudaError_t status = cudaGetDeviceCount(&d->count);
        if (status != cudaSuccess) {
            d->why_not = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
            d->count = 0;
            (void)cudaGetLastError();
        } else if (d->count == 0) {
            d->why_not = "no CUDA device found";
        }
        d->backends.assign(static_cast<size_t>(d->count), nullptr);
    });
    return *d;
}

}  // namespace

int cuda_device_count(std::string* why_not) {
    Devices& d = devices();
    if (d.count == 0 && why_not) *why_not = d.why_not;
    return d.count;
}

Backend* cuda_backend(int index, std::string* why_not) {
    Devices& d = devices();
    if (index < 0 || index >= d.count) {
        if (why_not)
            *why_not = d.count == 0 ? d.why_not
                                    : "device cuda:" + std::to_string(index) + " does not exist (" +
                                          std::to_string(d.count) + " CUDA devices)";
        return nullptr;
    }
    std::lock_guard<std::mutex> lock(d.mutex);
    auto& slot = d.backends[static_cast<size_t>(index)];
    if (slot == nullptr) slot = new cuda_detail::CudaBackend(index);
    return slot;
}

}  // namespace latte
