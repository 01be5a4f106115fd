#include "experiments/train_data.h"

#include "core/autograd.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace latte::experiments {

TrainingData load_training_data(const std::string& path, int64_t D1, int64_t D2, int64_t batch) {
    const nn::SafetensorsFile file = nn::load_safetensors(path);
    TrainingData data;
    data.path = path;
    for (const auto& [name, t] : file.tensors) {
        if (name == "x") data.x = t;
        else if (name == "y") data.y = t;
        else if (name == "target") data.target = t;
        else LATTE_FAIL("latte train: --data ", path, " has an unexpected tensor '", name, "' (expected x, y, target)");
    }
    for (const char* name : {"x", "y", "target"}) {
        const Tensor& t = name[0] == 'x' ? data.x : name[0] == 'y' ? data.y : data.target;
        LATTE_CHECK(t.defined(), "latte train: --data ", path, " has no tensor '", name, "' (needs x, y, target)");
    }
    LATTE_CHECK(data.x.dim() == 3 && data.x.size(0) > 0 && data.x.size(1) > 0 && data.x.size(2) == D1,
                "latte train: --data ", path, ": x has shape ", shape_str(data.x.shape()),
                ", expected (N, L1, D_1) with N, L1 > 0 and D_1 = ", D1);
    const int64_t n = data.x.size(0);
    LATTE_CHECK(data.y.dim() == 3 && data.y.size(0) == n && data.y.size(1) > 0 && data.y.size(2) == D2,
                "latte train: --data ", path, ": y has shape ", shape_str(data.y.shape()),
                ", expected (N, L2, D_2) with N = ", n, " (as x), L2 > 0 and D_2 = ", D2);
    LATTE_CHECK(data.target.shape() == data.x.shape(), "latte train: --data ", path, ": target has shape ",
                shape_str(data.target.shape()), ", expected x's shape ", shape_str(data.x.shape()));
    LATTE_CHECK(n >= batch, "latte train: --data ", path, " has ", n, " samples, fewer than --batch ", batch);
    return data;
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
                    int64_t D, Device device) {
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    Batch b;
    b.x = randn({batch, L1, D}, gen, on_device);
    b.y = randn({batch, L2, D}, gen, on_device);
    NoGradGuard no_grad;
    b.target = teacher(b.x, b.y);
    return b;
}

}  // namespace latte::experiments
