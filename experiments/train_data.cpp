#include "experiments/train_data.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "nn/data_parallel.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {

namespace {

struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
};

// Names, dtypes and shapes of a --data file's tensors against the model's widths and the batch.
TrainingDataLayout check_layout(const std::vector<Entry>& entries, const std::string& path, int64_t D1, int64_t D2,
                                int64_t batch) {
    const std::string where = "latte train: --data " + path;
    const Entry* found[3] = {nullptr, nullptr, nullptr};
    for (const Entry& e : entries) {
        const int k = e.name == "x" ? 0 : e.name == "y" ? 1 : e.name == "target" ? 2 : -1;
        LATTE_CHECK(k >= 0, where, " has an unexpected tensor '", e.name, "' (expected x, y, target)");
        found[k] = &e;
    }
    const char* names[3] = {"x", "y", "target"};
    for (int k = 0; k < 3; ++k)
        LATTE_CHECK(found[k], where, " has no tensor '", names[k], "' (needs x, y, target)");
    for (int k = 0; k < 3; ++k)
        LATTE_CHECK(found[k]->dtype == DType::Float32 || found[k]->dtype == DType::Float64, where, ": tensor '",
                    names[k], "' is ", dtype_name(found[k]->dtype), ", expected float32 or float64");
    const Shape &x = found[0]->shape, &y = found[1]->shape, &target = found[2]->shape;
    LATTE_CHECK(x.size() == 3 && x[0] > 0 && x[1] > 0 && x[2] == D1, where, ": x has shape ", shape_str(x),
                ", expected (N, L1, D_1) with N, L1 > 0 and D_1 = ", D1);
    const int64_t n = x[0];
    LATTE_CHECK(y.size() == 3 && y[0] == n && y[1] > 0 && y[2] == D2, where, ": y has shape ", shape_str(y),
                ", expected (N, L2, D_2) with N = ", n, " (as x), L2 > 0 and D_2 = ", D2);
    LATTE_CHECK(target == x, where, ": target has shape ", shape_str(target), ", expected x's shape ", shape_str(x));
    LATTE_CHECK(n >= batch, where, " has ", n, " samples, fewer than --batch ", batch);
    return {n, x[1], y[1]};
}

}  // namespace

TrainingDataLayout read_training_data_header(const std::string& path, int64_t D1, int64_t D2, int64_t batch) {
    std::vector<Entry> entries;
    for (const nn::SafetensorsEntry& e : nn::read_safetensors_header(path).tensors)
        entries.push_back({e.name, e.dtype, e.shape});
    return check_layout(entries, path, D1, D2, batch);
}

TrainingData load_training_data(const std::string& path, int64_t D1, int64_t D2, int64_t batch) {
    // The header first: a file of the wrong shapes or dtype is refused before its data is read.
    read_training_data_header(path, D1, D2, batch);
    const nn::SafetensorsFile file = nn::load_safetensors(path);
    std::vector<Entry> entries;  // checked again: the file may have changed since its header was read
    for (const auto& [name, t] : file.tensors) entries.push_back({name, t.dtype(), t.shape()});
    check_layout(entries, path, D1, D2, batch);
    TrainingData data;
    data.path = path;
    const TrainingDataLayout layout = check_layout(entries, path, D1, D2, batch);
    const double bound = training_data_bound(batch, layout.L1, D1);
    for (const auto& [name, t] : file.tensors) {
        const std::string what = "latte train: --data " + path + ": tensor '" + name + "'";
        nn::check_finite(t, what);
        NoGradGuard no_grad;
        if (max(abs(t)).item() > bound) {  // find the first such value, to name it
            const std::vector<double> v = t.to_vector();
            const auto big = std::find_if(v.begin(), v.end(), [&](double e) { return std::fabs(e) > bound; });
            LATTE_FAIL(what, " holds ", *big, " at index ", nn::index_text(big - v.begin(), t.shape()),
                       ", beyond the bound ", bound, " = sqrt(FLT_MAX / (4 n)) for the n = 4 * batch * L1 * D_1 = ",
                       4 * batch * layout.L1 * D1, " numbers the loss sums: its float32 squared error would overflow");
        }
        (name == "x" ? data.x : name == "y" ? data.y : data.target) = t;
    }
    return data;
}

double training_data_bound(int64_t batch, int64_t L1, int64_t D1) {
    const double n = 4 * double(batch) * double(L1) * double(D1);
    return std::sqrt(double(std::numeric_limits<float>::max()) / (4 * n));
}

Batch data_batch(const TrainingData& data, int64_t step, int64_t batch, DType dtype, Device device) {
    const int64_t n = data.size(), start = (step % n) * (batch % n) % n;  // (step * batch) mod n, without overflow
    auto rows = [&](const Tensor& t) {
        Tensor picked = start + batch <= n
                            ? narrow(t, 0, start, batch)
                            : cat({narrow(t, 0, start, n - start), narrow(t, 0, 0, batch - (n - start))}, 0);
        return to(to(picked, dtype), device);
    };
    NoGradGuard no_grad;
    return {rows(data.x), rows(data.y), rows(data.target)};
}

Batch teacher_batch(const nn::Attention& teacher, Generator& gen, int64_t batch, int64_t L1, int64_t L2,
                    int64_t D, Device device, bool shard) {
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    Batch b;
    b.x = randn({batch, L1, D}, gen, on_device);
    b.y = randn({batch, L2, D}, gen, on_device);
    if (shard) {
        b.x = nn::shard_batch(b.x);
        b.y = nn::shard_batch(b.y);
    }
    NoGradGuard no_grad;
    b.target = teacher(b.x, b.y);
    return b;
}

}  // namespace latte::experiments
