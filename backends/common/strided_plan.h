// The shape of a strided loop over up to three views of one shape (destination first): dims of
// size 1 are dropped and dims contiguous in every view are merged, so most loops become one flat
// run. Shared by the CPU loops and the CUDA kernels' launch code.
#pragma once
#include <array>
#include <cstdint>

#include "../../core/shape.h"

namespace latte {

template <int N>
struct StridedPlan {
    Shape shape;                     // coalesced shape (at least one dim)
    std::array<Shape, N> strides;    // per operand, same rank as shape
};

template <int N>
StridedPlan<N> make_plan(const Shape& shape, const std::array<const Shape*, N>& strides) {
    StridedPlan<N> plan;
    for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;
        const bool can_merge = [&] {
            if (plan.shape.empty()) return false;
            for (int k = 0; k < N; ++k)
                if (plan.strides[k].back() != (*strides[k])[d] * shape[d]) return false;
            return true;
        }();
        if (can_merge) {
            plan.shape.back() *= shape[d];
            for (int k = 0; k < N; ++k) plan.strides[k].back() = (*strides[k])[d];
        } else {
            plan.shape.push_back(shape[d]);
            for (int k = 0; k < N; ++k) plan.strides[k].push_back((*strides[k])[d]);
        }
    }
    if (plan.shape.empty()) {
        plan.shape.push_back(1);
        for (int k = 0; k < N; ++k) plan.strides[k].push_back(1);
    }
    return plan;
}

}  // namespace latte
