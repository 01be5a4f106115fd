// Fused attention on the CPU in the FlashAttention-2 scheme: query tiles meet key tiles, an online
// softmax keeps each row's running max and sum, and the (L1, L2) scores are never stored. The
// backward recomputes each tile's probabilities from the saved log-sum-exp. Tile products are
// single-threaded BLAS calls; latte's pool runs the tiles in parallel. GQA is native: query head h
// reads key/value head h mod G in place, through the views' strides. Under autocast(bf16)
// (AttentionSizes::bf16) the six tile products run on gemm_tile_bf16 (bf16 inputs, float32 sums);
// everything between them stays as it is.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/bf16_tile.h"
#include "backends/cpu/blas.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

// Tile sizes measured on Zen 4 (2 threads, d = 64): 128 x 512 ran the long config (L = 2048) 12%
// faster than 64 x 128, and small and medium as fast; its two score tiles take 512 KiB per thread.
constexpr int64_t kRows = 128;  // query rows per tile
constexpr int64_t kCols = 512;  // keys per tile

// Rows of a 4-D [batch, head, length, width] view with a unit last stride.
template <class T>
struct Rows {
    T* data;
    int64_t sb, sh, sl;
    T* at(int64_t b, int64_t h, int64_t l) const { return data + b * sb + h * sh + l * sl; }
};

template <class T>
Rows<T> rows_of(const View& v) {
    return {static_cast<T*>(v.data), v.strides[0], v.strides[1], v.strides[2]};
}

// One tile product: gemm_tile<T>, or for float32 under autocast(bf16) gemm_tile_bf16.
template <class T>
void tile_product(const AttentionSizes& s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                  const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    if constexpr (std::is_same_v<T, float>)
        if (s.bf16) return gemm_tile_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    gemm_tile<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Keys [0, end) that query row i may see.
int64_t keys_seen(const AttentionSizes& s, int64_t i) {
    return s.causal ? std::clamp<int64_t>(i + s.l2 - s.l1 + 1, 0, s.l2) : s.l2;
}

// Scratch for one tile, reused across the tiles a thread runs and across calls: one per thread
// (thread_local), grown when a call needs more and never shrunk, so a training step neither
// allocates it nor zeroes it (fresh 600 KiB per call was 2% of a small step in memset and page
// faults). Every tile writes what it reads, so stale contents do not matter.
template <class T>
struct Scratch {
    std::vector<T> q, scores, acc, dscores, dq;
    std::vector<double> max, sum, delta;
    static Scratch& for_this_thread(const AttentionSizes& s) {
        thread_local Scratch w;
        auto grow = [](auto& v, int64_t n) {
            if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
        };
        grow(w.q, kRows * s.d);
        grow(w.scores, kRows * kCols);
        grow(w.acc, kRows * s.dv);
        grow(w.dscores, kRows * kCols);
        grow(w.dq, kRows * s.d);
        grow(w.max, kRows);
        grow(w.sum, kRows);
        grow(w.delta, kRows);
        return w;
    }
};

// q rows [i0, i0 + rows) of head h, times the scale, into a contiguous tile.
template <class T>
void load_scaled(const AttentionSizes& s, const Rows<const T>& q, int64_t b, int64_t h, int64_t i0, int64_t rows,
                 T* out) {
    for (int64_t r = 0; r < rows; ++r) scale_row(out + r * s.d, q.at(b, h, i0 + r), static_cast<T>(s.scale), s.d);
}

// How many of the `cols` keys from j0 on query row i sees.
inline int64_t visible(const AttentionSizes& s, int64_t i, int64_t j0, int64_t cols) {
    return std::clamp<int64_t>(keys_seen(s, i) - j0, 0, cols);
}

template <class T>
void forward_tile(const AttentionSizes& s, const Rows<const T>& q, const Rows<const T>& k, const Rows<const T>& v,
                  const Rows<T>& o, double* lse, int64_t b, int64_t h, int64_t i0, int64_t rows, Scratch<T>& w) {
    const int64_t g = h % s.kv_heads, dv = s.dv;
    load_scaled(s, q, b, h, i0, rows, w.q.data());
    std::fill(w.max.begin(), w.max.begin() + rows, -std::numeric_limits<double>::infinity());
    std::fill(w.sum.begin(), w.sum.begin() + rows, 0.0);
    std::fill(w.acc.begin(), w.acc.begin() + rows * dv, T(0));
    const int64_t end = keys_seen(s, i0 + rows - 1);  // the tile's last row sees the most keys
    for (int64_t j0 = 0; j0 < end; j0 += kCols) {
        const int64_t cols = std::min(kCols, end - j0);
        T* st = w.scores.data();
        tile_product<T>(s, false, true, rows, cols, s.d, T(1), w.q.data(), s.d, k.at(b, g, j0), k.sl, T(0), st, kCols);
        for (int64_t r = 0; r < rows; ++r) {
            T* row = st + r * kCols;
            const int64_t seen = visible(s, i0 + r, j0, cols);
            const double m = seen > 0 ? std::max<double>(w.max[r], max_of(row, seen)) : w.max[r];
            const double tile_sum = seen > 0 ? exp_shifted_sum(row, seen, static_cast<T>(m)) : 0.0;
            std::fill(row + seen, row + cols, T(0));
            // Rescale what was accumulated under the old max (nothing yet when it was -inf: the
            // row's accumulator still holds zeros).
            const bool nothing_yet = w.max[r] == -std::numeric_limits<double>::infinity();
            const double rescale = w.max[r] == m ? 1.0 : std::exp(w.max[r] - m);
            w.sum[r] = w.sum[r] * rescale + tile_sum;
            w.max[r] = m;
            if (rescale != 1.0 && !nothing_yet)
                scale_row(w.acc.data() + r * dv, w.acc.data() + r * dv, static_cast<T>(rescale), dv);
        }
        tile_product<T>(s, false, false, rows, dv, cols, T(1), st, kCols, v.at(b, g, j0), v.sl, T(1), w.acc.data(), dv);
    }
    for (int64_t r = 0; r < rows; ++r) {
        scale_row(o.at(b, h, i0 + r), w.acc.data() + r * dv, static_cast<T>(1.0 / w.sum[r]), dv);
        lse[(b * s.heads + h) * s.l1 + i0 + r] = w.max[r] + std::log(w.sum[r]);
    }
}

// Gradients of query rows [i0, i0 + rows) of head h: dq for those rows, and their share of dk and
// dv of K/V head h mod G (the caller owns that head, so no other thread writes it).
template <class T>
void backward_tile(const AttentionSizes& s, const Rows<const T>& q, const Rows<const T>& k, const Rows<const T>& v,
                   const Rows<const T>& o, const double* lse, const Rows<const T>& dout, const Rows<T>& dq,
                   const Rows<T>& dk, const Rows<T>& dv, int64_t b, int64_t h, int64_t i0, int64_t rows,
                   Scratch<T>& w) {
    const int64_t g = h % s.kv_heads;
    load_scaled(s, q, b, h, i0, rows, w.q.data());
    for (int64_t r = 0; r < rows; ++r)  // delta = rowsum(dO * O)
        w.delta[r] = dot_double(dout.at(b, h, i0 + r), o.at(b, h, i0 + r), s.dv);
    std::fill(w.dq.begin(), w.dq.begin() + rows * s.d, T(0));
    const double* row_lse = lse + (b * s.heads + h) * s.l1 + i0;
    const int64_t end = keys_seen(s, i0 + rows - 1);
    for (int64_t j0 = 0; j0 < end; j0 += kCols) {
        const int64_t cols = std::min(kCols, end - j0);
        T* p = w.scores.data();
        T* ds = w.dscores.data();
        tile_product<T>(s, false, true, rows, cols, s.d, T(1), w.q.data(), s.d, k.at(b, g, j0), k.sl, T(0), p, kCols);
        for (int64_t r = 0; r < rows; ++r) {  // P = exp(S - lse), 0 where masked
            T* row = p + r * kCols;
            const int64_t seen = visible(s, i0 + r, j0, cols);
            exp_shifted_sum(row, seen, static_cast<T>(row_lse[r]));
            std::fill(row + seen, row + cols, T(0));
        }
        // dV += P^T dO and dP = dO V^T
        tile_product<T>(s, true, false, cols, s.dv, rows, T(1), p, kCols, dout.at(b, h, i0), dout.sl, T(1),
                        dv.at(b, g, j0), dv.sl);
        tile_product<T>(s, false, true, rows, cols, s.dv, T(1), dout.at(b, h, i0), dout.sl, v.at(b, g, j0), v.sl, T(0),
                        ds, kCols);
        for (int64_t r = 0; r < rows; ++r)  // dS = P * (dP - delta)
            softmax_grad_row(ds + r * kCols, p + r * kCols, static_cast<T>(w.delta[r]), cols);
        // dQ += dS K (scaled at the end) and dK += dS^T (scale Q)
        tile_product<T>(s, false, false, rows, s.d, cols, T(1), ds, kCols, k.at(b, g, j0), k.sl, T(1), w.dq.data(),
                        s.d);
        tile_product<T>(s, true, false, cols, s.d, rows, T(1), ds, kCols, w.q.data(), s.d, T(1), dk.at(b, g, j0),
                        dk.sl);
    }
    for (int64_t r = 0; r < rows; ++r)
        scale_row(dq.at(b, h, i0 + r), w.dq.data() + r * s.d, static_cast<T>(s.scale), s.d);
}

int64_t tiles(int64_t l1) { return (l1 + kRows - 1) / kRows; }

}  // namespace

void CpuBackend::attention_fwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                               double* lse) {
    LATTE_CHECK(!s.bf16 || s.dtype == DType::Float32, "attention: bf16 products take float32 inputs, got ",
                dtype_name(s.dtype));
    dispatch(s.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const Rows<const T> qr = rows_of<const T>(q), kr = rows_of<const T>(k), vr = rows_of<const T>(v);
        const Rows<T> orr = rows_of<T>(o);
        const int64_t per_head = tiles(s.l1);
        // One task per (batch, head, query tile): tasks write disjoint rows of o and lse.
        parallel_for(s.batch * s.heads * per_head, 1, [&](int64_t lo, int64_t hi) {
            Scratch<T>& w = Scratch<T>::for_this_thread(s);
            for (int64_t t = lo; t < hi; ++t) {
                const int64_t bh = t / per_head, i0 = (t % per_head) * kRows;
                forward_tile<T>(s, qr, kr, vr, orr, lse, bh / s.heads, bh % s.heads, i0, std::min(kRows, s.l1 - i0), w);
            }
        });
    });
}

void CpuBackend::attention_bwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                               const double* lse, const View& dout, const View& dq, const View& dk, const View& dv) {
    LATTE_CHECK(!s.bf16 || s.dtype == DType::Float32, "attention: bf16 products take float32 inputs, got ",
                dtype_name(s.dtype));
    dispatch(s.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const Rows<const T> qr = rows_of<const T>(q), kr = rows_of<const T>(k), vr = rows_of<const T>(v),
                            orr = rows_of<const T>(o), dor = rows_of<const T>(dout);
        const Rows<T> dqr = rows_of<T>(dq), dkr = rows_of<T>(dk), dvr = rows_of<T>(dv);
        // One task per (batch, K/V head): it owns that head's dk and dv, and the dq rows of the
        // query heads that read it (h = g, g + G, ...).
        parallel_for(s.batch * s.kv_heads, 1, [&](int64_t lo, int64_t hi) {
            Scratch<T>& w = Scratch<T>::for_this_thread(s);
            for (int64_t t = lo; t < hi; ++t) {
                const int64_t b = t / s.kv_heads, g = t % s.kv_heads;
                for (int64_t j = 0; j < s.l2; ++j) {
                    std::fill(dkr.at(b, g, j), dkr.at(b, g, j) + s.d, T(0));
                    std::fill(dvr.at(b, g, j), dvr.at(b, g, j) + s.dv, T(0));
                }
                for (int64_t h = g; h < s.heads; h += s.kv_heads)
                    for (int64_t i0 = 0; i0 < s.l1; i0 += kRows)
                        backward_tile<T>(s, qr, kr, vr, orr, lse, dor, dqr, dkr, dvr, b, h, i0,
                                         std::min(kRows, s.l1 - i0), w);
            }
        });
    });
}

}  // namespace latte::cpu
