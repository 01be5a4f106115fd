// Shared by the training tests: a small fast config, byte comparisons, and argv for cmd_train.
#pragma once
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "experiments/commands.h"
#include "experiments/teacher_student.h"
#include "ops/ops.h"
#include "tests/support/fixtures.h"

namespace latte::test {

inline experiments::TrainConfig small_train_config(const std::string& model = "gqa") {
    experiments::TrainConfig c;
    c.model = model;
    c.sizes = {16, 2, 8, 1, 8};
    c.batch = 4;
    c.L1 = c.L2 = 4;
    c.steps = 20;
    c.lr = 0.01;
    c.seed = 5;
    c.progress = false;
    return c;
}

inline bool same_bytes(const Tensor& a, const Tensor& b) {
    const Tensor ca = contiguous(a), cb = contiguous(b);
    return ca.shape() == cb.shape() && ca.dtype() == cb.dtype() &&
           std::memcmp(ca.view().data, cb.view().data, static_cast<size_t>(ca.numel()) * dtype_size(ca.dtype())) == 0;
}

inline bool same_bytes(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

inline std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `latte train ARGS...` as the program runs it.
inline int run_train(std::vector<std::string> args) {
    args.insert(args.begin(), {"latte", "train"});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return experiments::cmd_train(static_cast<int>(argv.size()), argv.data(), 2);
}

}  // namespace latte::test
