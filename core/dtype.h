// Runtime element types. bfloat16 is planned for the CUDA backend; adding it here makes every
// switch without a default fail to compile (-Werror=switch) until it is handled everywhere.
#pragma once
#include <cstddef>
#include <string>

namespace latte {

enum class DType { Float32, Float64 };

inline std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::Float32: return 4;
        case DType::Float64: return 8;
    }
    return 0;
}

inline const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
    }
    return "?";
}

}  // namespace latte
