// Runtime element types. Int64 holds indices (max's argmax): it can be created, filled, copied,
// converted and viewed; compute kernels refuse it with a latte::Error. Adding a type here makes
// every switch without a default fail to compile (-Werror=switch) until it is handled everywhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

namespace latte {

enum class DType { Float32, Float64, Int64 };

inline std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::Float32: return 4;
        case DType::Float64: return 8;
        case DType::Int64: return 8;
    }
    return 0;
}

// The DType of a C++ element type (float, double or int64_t).
template <class T>
constexpr DType dtype_of() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int64_t>,
                  "latte element types are float, double and int64_t");
    if constexpr (std::is_same_v<T, float>) return DType::Float32;
    else if constexpr (std::is_same_v<T, double>) return DType::Float64;
    else return DType::Int64;
}

inline const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int64: return "int64";
    }
    return "?";
}

inline std::ostream& operator<<(std::ostream& out, DType dtype) { return out << dtype_name(dtype); }

}  // namespace latte
