// The backend interface: kernels over raw strided views. A backend never sees tensors, graph
// nodes or gradients, so a new device (CUDA) slots in without touching autodiff code.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device.h"
#include "dtype.h"
#include "shape.h"

namespace latte {

// A strided view of raw memory. `data` already includes the view's offset. Strides in elements.
struct View {
    void* data = nullptr;
    Shape shape;
    Shape strides;
    DType dtype = DType::Float32;
};

// Pointwise ops of one input. `alpha` is the scalar of the *Scalar forms and of PowScalar.
// Activations (ops/activation.cpp) come with their derivatives (the *Grad forms give d op/dx at x),
// so each backward is one kernel plus a mul. MaxScalar/MinScalar give max(x, alpha)/min(x, alpha)
// (a NaN x stays NaN, as torch.clamp); GeScalar/LeScalar give 1 or 0 for x >= alpha / x <= alpha.
enum class UnaryOp {
    Neg, Exp, Log, Sqrt, Tanh, Relu, Sign, AddScalar, MulScalar, PowScalar, RDivScalar,
    Abs, Sigmoid, Silu, SiluGrad, GeluErf, GeluErfGrad, GeluTanh, GeluTanhGrad,
    MaxScalar, MinScalar, GeScalar, LeScalar
};
// Row-wise normalisation over the last dim (ops/norm.cpp): RMSNorm or LayerNorm (biased variance).
enum class NormKind { Rms, Layer };
// Pointwise ops of two inputs of the same shape (broadcasting is done with stride-0 views).
// Eq, Gt return 1 or 0.
enum class BinaryOp { Add, Sub, Mul, Div, Eq, Gt };
enum class ReduceOp { Sum, Max };

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for each batch b; row-major matrices.
// Offsets are in elements from the base pointers; lda/ldb/ldc are row strides.
struct GemmArgs {
    DType dtype = DType::Float32;
    bool trans_a = false, trans_b = false;
    int64_t m = 0, n = 0, k = 0;
    double alpha = 1.0, beta = 0.0;
    const void* a = nullptr;
    const void* b = nullptr;
    void* c = nullptr;
    int64_t lda = 0, ldb = 0, ldc = 0;
    std::vector<int64_t> a_offsets, b_offsets, c_offsets;  // one per batch, same length
    // float32 only: multiply the inputs rounded to bf16, accumulating in float32 (autocast.h).
    bool bf16 = false;
};

// The arguments of one row-major gemm, checked before BLAS sees them; `where` names the caller in
// the error. Refused:
//  - a size, leading dimension or batch count past 2^31 - 1, which BLAS libraries with 32-bit
//    sizes (Debian's LP64 OpenBLAS, cuBLAS's classic API) would wrap into garbage;
//  - a leading dimension below its stored row's length (A: k, or m when transposed; B: n, or k
//    when transposed; C: n; and at least 1), a call OpenBLAS skips with a note on stderr,
//    leaving C as it was.
void check_blas_gemm(const char* where, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                     int64_t ldb, int64_t ldc, int64_t batches = 1);

// The scalars of one Adam/AdamW step (bias1 = 1 - beta1^t, bias2 = 1 - beta2^t).
struct AdamStep {
    double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0, bias1 = 1, bias2 = 1;
    bool decoupled = false;  // AdamW
};

// Sizes of a fused attention: query head h of `heads` reads key/value head h mod kv_heads.
// Views are 4-D, [batch, heads or kv_heads, length, width], any strides but a unit last one.
// lse is a contiguous float64 [batch, heads, l1]: the log-sum-exp of each query row's scores.
struct AttentionSizes {
    DType dtype = DType::Float32;
    int64_t batch = 0, heads = 0, kv_heads = 0, l1 = 0, l2 = 0, d = 0, dv = 0;
    double scale = 1.0;
    bool causal = false;  // query i sees keys j <= i + (l2 - l1)
    // float32 only, under autocast(bf16): the tile products (forward and backward) multiply their
    // inputs rounded to bf16 with float32 sums; softmax, scaling, max, sum and outputs stay float32.
    bool bf16 = false;
};

class Backend {
public:
    virtual ~Backend() = default;

    // Memory: backends keep freed blocks for reuse (see CachingAllocator); empty_cache hands
    // them back to the system and cached_bytes says how much is held that way.
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void deallocate(void* ptr, std::size_t bytes) = 0;
    virtual void empty_cache() {}
    virtual std::size_t cached_bytes() const { return 0; }
    // Large blocks (the cached sizes) taken from the system so far; see CachingAllocator.
    virtual std::size_t system_allocations() const { return 0; }
    // Waits for every kernel queued on this backend (a no-op where kernels run synchronously).
    virtual void synchronize() {}
    // A mark after the work queued so far, for another queue to wait on (CUDA: an event recorded on
    // the device's stream, as a cudaEvent_t); null where kernels run synchronously.
    virtual std::shared_ptr<void> record_marker() { return nullptr; }
    // Whether gemm runs GemmArgs::bf16 products here; why_not says what is missing otherwise.
    virtual bool supports_bf16_products(std::string* why_not) {
        if (why_not) *why_not = "this backend has no bf16 products";
        return false;
    }
    // Copies raw bytes between this backend's memory and host memory.
    virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
    virtual void copy_from_host(void* dst, const void* host_src, std::size_t bytes) = 0;

    // dst[i] = src[i] for views of equal shape, converting dtype if they differ.
    virtual void copy(const View& dst, const View& src) = 0;
    virtual void fill(const View& dst, double value) = 0;
    // Random fills of n contiguous elements, element i computed from (state, i) by
    // core/random_counter.h: normal: mean + std * (cos of pair i/2 if i is even, else its sin);
    // uniform: low + (high - low) * uniform(state, i + 1).
    virtual void fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std) = 0;
    virtual void fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high) = 0;
    virtual void unary(UnaryOp op, double alpha, const View& dst, const View& src) = 0;
    virtual void binary(BinaryOp op, const View& dst, const View& a, const View& b) = 0;
    // Contiguous src seen as [outer, size, inner] reduced over the middle axis into dst [outer, inner].
    virtual void reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size,
                        int64_t inner) = 0;
    virtual void gemm(const GemmArgs& args) = 0;
    // Fused Adam over n contiguous elements: updates p, m and v in place from g.
    virtual void adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v) = 0;
    // Row-wise softmax (or log-softmax) of a contiguous [rows, cols] matrix, and its backward:
    // softmax:     dx = y * (dy - sum(dy * y))
    // log-softmax: dx = dy - exp(y) * sum(dy)
    virtual void softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log) = 0;
    virtual void softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols,
                             bool log) = 0;
    // Fused attention (FlashAttention-2 scheme: tiles and an online softmax, the (l1, l2) scores
    // never stored). Forward writes o and lse; backward recomputes the tiles and writes dq, dk, dv.
    // Backends without it return false from has_fused_attention and throw.
    virtual bool has_fused_attention() const { return false; }
    virtual void attention_fwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                               double* lse);
    virtual void attention_bwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                               const double* lse, const View& dout, const View& dq, const View& dk, const View& dv);
    // ---- kernels of the language-model ops (ops/embedding, loss, norm, activation). Defaults throw. ----
    // Embedding: dst[i, :] = src[ids[i], :] (gather), dst[ids[i], :] += src[i, :] (scatter-add,
    // repeated ids accumulate). Contiguous rows of `cols` elements; ids are device memory, n of them,
    // already checked to lie in range by the op.
    virtual void gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols);
    virtual void scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols);
    // Fused log-softmax + NLL over a contiguous [rows, cols] logits matrix: lse[r] = logsumexp(row r)
    // (float64 whatever the logits' dtype),
    // loss[r] = lse[r] - x[r, t[r]], or 0 where t[r] == ignore_index. Backward:
    // dx[r, c] = g[r] * (exp(x[r, c] - lse[r]) - (c == t[r])), a zero row where t[r] == ignore_index.
    virtual void cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                                   int64_t rows, int64_t cols, int64_t ignore_index);
    virtual void cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets,
                                   const void* g, DType dtype, int64_t rows, int64_t cols, int64_t ignore_index);
    // Normalisation of a contiguous [rows, cols] x over each row; weight and bias (cols) may be null
    // (then 1 and 0). Forward writes y, rstd[r] = 1 / sqrt(var + eps) and, for Layer, mean[r]
    // (Rms: var = mean(x^2), mean is not written and may be null). Backward writes dx only:
    // xhat = (x - mean) * rstd, gw = dy * weight,
    // dx = rstd * (gw - [Layer] mean(gw) - xhat * mean(gw * xhat)).
    virtual void norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight,
                          const void* bias, DType dtype, int64_t rows, int64_t cols, double eps);
    virtual void norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight, const void* mean,
                          const void* rstd, DType dtype, int64_t rows, int64_t cols);
    // dst = cond != 0 ? a : b elementwise, all four views of one shape (broadcast by stride 0) and
    // one floating dtype.
    virtual void where(const View& dst, const View& cond, const View& a, const View& b);
    // SwiGLU's pointwise part in one pass over n contiguous elements: out = silu(gate) * up, and
    // backward dgate = (g * up) * silu'(gate), dup = g * silu(gate), the same expressions as
    // silu then mul. Backends without it return false from has_fused_swiglu and throw; swiglu
    // then composes silu and mul.
    virtual bool has_fused_swiglu() const { return false; }
    // Mean squared error's two passes over n contiguous elements: the sum of (input - target)^2,
    // accumulated in double, and the gradient dinput = scale * (input - target). Backends without
    // them return false from has_fused_mse and throw; mse_loss then composes sub, mul and sum.
    virtual bool has_fused_mse() const { return false; }
    // RoPE's rotate-half rotation of a contiguous x viewed as [outer, length, heads, d], in one
    // pass: out = [x1 c - x2 s, x2 c + x1 s] with x1, x2 the halves of each row and c, s the
    // length x d/2 tables (x's dtype) at the row's position; inverse rotates by -s (the gradient).
    // Backends without it return false from has_fused_rope and throw; rope then composes it.
    virtual bool has_fused_rope() const { return false; }
    virtual void rope_rotate(void* out, const void* x, const void* cos, const void* sin, DType dtype, int64_t outer,
                             int64_t length, int64_t heads, int64_t d, bool inverse);
    virtual double squared_error_sum(const void* input, const void* target, DType dtype, int64_t n);
    virtual void squared_error_grad(void* dinput, const void* input, const void* target, double scale, DType dtype,
                                    int64_t n);
    virtual void swiglu_fwd(void* out, const void* gate, const void* up, DType dtype, int64_t n);
    virtual void swiglu_bwd(void* dgate, void* dup, const void* g, const void* gate, const void* up, DType dtype,
                            int64_t n);
    // Thin SVD of a contiguous row-major m x n matrix `a` (overwritten): a = u diag(s) vh with
    // k = min(m, n), u m x k, s k (descending), vh k x n. Backends without one throw.
    virtual void svd(DType dtype, int64_t m, int64_t n, void* a, void* s, void* u, void* vh);
};

// The backend that runs kernels for `device`; throws latte::Error when none is available.
Backend& backend_for(Device device);

// Link-time hooks, defined under backends/: the CPU backend always exists; the CUDA one returns
// null with a reason when latte was built without CUDA or no GPU is usable.
Backend& cpu_backend();
Backend* cuda_backend(int index, std::string* why_not);
int cuda_device_count(std::string* why_not);

}  // namespace latte
