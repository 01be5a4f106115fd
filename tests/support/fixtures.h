// Small builders shared by the tests.
#pragma once
#include <filesystem>
#include <string>
#include <unistd.h>

#include "ops/ops.h"

namespace latte::test {

inline TensorOptions f64(bool requires_grad = false) {
    return TensorOptions{}.with_dtype(DType::Float64).with_requires_grad(requires_grad);
}

// A float64 randn leaf, seeded.
inline Tensor randn64(const Shape& shape, uint64_t seed, bool requires_grad = true) {
    Generator gen(seed);
    return randn(shape, gen, f64(requires_grad));
}

// A float64 leaf with values in [low, high): for ops with kinks or domains (log, sqrt, pow, div).
inline Tensor uniform64(const Shape& shape, uint64_t seed, double low, double high, bool requires_grad = true) {
    Generator gen(seed);
    return rand(shape, gen, f64(requires_grad), low, high);
}

// A path in the system's temporary folder for a test's scratch file; the process id keeps test
// processes running at the same time (ctest -j, several build folders) out of each other's files.
inline std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("latte_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

// A scratch folder of its own under temp_path(name), emptied at the start and removed at the end.
struct ScratchDir {
    explicit ScratchDir(const std::string& name) : dir(temp_path(name)) {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    ~ScratchDir() { std::filesystem::remove_all(dir); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string operator/(const std::string& file) const { return dir + "/" + file; }
    std::string dir;
};

}  // namespace latte::test
