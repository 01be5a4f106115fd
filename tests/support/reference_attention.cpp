#include "tests/support/reference_attention.h"

#include <cmath>

#include "core/factory.h"

namespace latte::test {
namespace {

// out[i] = sum_j W[row0 + i][j] * v[j] for `rows` rows of a row-major W with `cols` columns.
std::vector<double> project(const std::vector<double>& w, int64_t cols, int64_t row0, int64_t rows,
                            const double* v) {
    std::vector<double> out(static_cast<size_t>(rows), 0.0);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) out[static_cast<size_t>(i)] += w[static_cast<size_t>((row0 + i) * cols + j)] * v[j];
    return out;
}

}  // namespace

Tensor reference_attention(const Tensor& x, const Tensor& y, const AttentionWeights& w, int64_t heads,
                           int64_t kv_heads, bool causal) {
    const int64_t B = x.size(0), L1 = x.size(1), D1 = x.size(2), L2 = y.size(1), D2 = y.size(2);
    const int64_t dqk = w.W_Q.size(0) / heads, dv = w.W_V.size(0) / kv_heads;
    const auto vx = x.to_vector(), vy = y.to_vector();
    const auto wq = w.W_Q.to_vector(), wk = w.W_K.to_vector(), wv = w.W_V.to_vector(), wo = w.W_O.to_vector();
    std::vector<double> out(static_cast<size_t>(B * L1 * D1), 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < heads; ++h) {
            const int64_t g = h % kv_heads;
            for (int64_t i = 0; i < L1; ++i) {
                const auto q = project(wq, D1, h * dqk, dqk, &vx[static_cast<size_t>((b * L1 + i) * D1)]);
                std::vector<double> score(static_cast<size_t>(L2));
                double top = -INFINITY;
                for (int64_t j = 0; j < L2; ++j) {
                    const auto k = project(wk, D2, g * dqk, dqk, &vy[static_cast<size_t>((b * L2 + j) * D2)]);
                    double s = 0;
                    for (int64_t t = 0; t < dqk; ++t) s += q[static_cast<size_t>(t)] * k[static_cast<size_t>(t)];
                    s /= std::sqrt(static_cast<double>(dqk));
                    if (causal && j > i + (L2 - L1)) s = -INFINITY;
                    score[static_cast<size_t>(j)] = s;
                    top = std::max(top, s);
                }
                double z = 0;
                for (double& s : score) z += (s = std::exp(s - top));
                std::vector<double> o(static_cast<size_t>(dv), 0.0);  // o_{h,l1} = sum_j alpha_j v_{j,h}
                for (int64_t j = 0; j < L2; ++j) {
                    const auto v = project(wv, D2, g * dv, dv, &vy[static_cast<size_t>((b * L2 + j) * D2)]);
                    for (int64_t t = 0; t < dv; ++t) o[static_cast<size_t>(t)] += score[static_cast<size_t>(j)] / z * v[static_cast<size_t>(t)];
                }
                // x_out += W^O_h o_{h,l1}: columns h*dv .. h*dv+dv of W_O.
                for (int64_t r = 0; r < D1; ++r) {
                    double acc = 0;
                    for (int64_t t = 0; t < dv; ++t)
                        acc += wo[static_cast<size_t>(r * heads * dv + h * dv + t)] * o[static_cast<size_t>(t)];
                    out[static_cast<size_t>((b * L1 + i) * D1 + r)] += acc;
                }
            }
        }
    return from_vector(out, {B, L1, D1}, TensorOptions{}.with_dtype(DType::Float64));
}

}  // namespace latte::test
