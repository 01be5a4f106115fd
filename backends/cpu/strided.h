// Iteration over up to three strided views of one shape (destination first). Dims that are
// contiguous in every view are merged first, so most calls reduce to one flat loop.
#pragma once
#include <array>
#include <cstdint>

#include "backends/common/strided_plan.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {

using latte::StridedPlan;
using latte::make_plan;

// Calls span(offsets, inner_strides, count) for runs along the last coalesced dim, covering
// elements [begin, end) in row-major order; offsets are in elements.
template <int N, class Span>
void for_each_span(const StridedPlan<N>& plan, int64_t begin, int64_t end, Span&& span) {
    const int64_t rank = static_cast<int64_t>(plan.shape.size());
    const int64_t inner = plan.shape[rank - 1];
    Shape index(rank, 0);
    int64_t rest = begin;
    for (int64_t d = rank - 1; d >= 0; --d) {
        index[d] = rest % plan.shape[d];
        rest /= plan.shape[d];
    }
    std::array<int64_t, N> inner_strides;
    for (int k = 0; k < N; ++k) inner_strides[k] = plan.strides[k][rank - 1];
    int64_t pos = begin;
    while (pos < end) {
        std::array<int64_t, N> offsets{};
        for (int k = 0; k < N; ++k)
            for (int64_t d = 0; d < rank; ++d) offsets[k] += index[d] * plan.strides[k][d];
        const int64_t count = std::min(inner - index[rank - 1], end - pos);
        span(offsets, inner_strides, count);
        pos += count;
        index[rank - 1] += count;
        for (int64_t d = rank - 1; d > 0 && index[d] >= plan.shape[d]; --d) {
            index[d] = 0;
            ++index[d - 1];
        }
    }
}

// Elements per thread below which a loop stays on one thread.
constexpr int64_t kParallelGrain = 32768;

template <int N, class Span>
void parallel_spans(const StridedPlan<N>& plan, Span&& span) {
    parallel_for(shape_numel(plan.shape), kParallelGrain,
                 [&](int64_t begin, int64_t end) { for_each_span<N>(plan, begin, end, span); });
}

}  // namespace latte::cpu
