#include "core/factory.h"

#include <cmath>
#include <type_traits>

#include "core/random_counter.h"

namespace latte {
namespace {

// Copies host values of type T into a new tensor, converting to options.dtype on the device.
template <class T>
Tensor from_host(const T* values, const Shape& shape, const TensorOptions& options) {
    constexpr DType host_dtype = std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
    TensorOptions staging = options;
    staging.dtype = host_dtype;
    staging.requires_grad = false;
    Tensor raw = Tensor::empty(shape, staging);
    const size_t bytes = static_cast<size_t>(raw.numel()) * sizeof(T);
    if (bytes) backend_for(options.device).copy_from_host(raw.view().data, values, bytes);
    Tensor out = raw;
    if (options.dtype != host_dtype) {
        out = Tensor::empty(shape, staging.with_dtype(options.dtype));
        backend_for(options.device).copy(out.view(), raw.view());
    }
    if (options.requires_grad) out.requires_grad_(true);
    return out;
}

}  // namespace

Tensor full(const Shape& shape, double value, const TensorOptions& options) {
    TensorOptions plain = options;
    plain.requires_grad = false;
    Tensor t = Tensor::empty(shape, plain);
    backend_for(options.device).fill(t.view(), value);
    if (options.requires_grad) t.requires_grad_(true);
    return t;
}

Tensor zeros(const Shape& shape, const TensorOptions& options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, const TensorOptions& options) { return full(shape, 1.0, options); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }

Tensor arange(double start, double end, double step, const TensorOptions& options) {
    LATTE_CHECK(step != 0.0 && std::isfinite(step), "arange: step must be finite and non-zero, got ", step);
    const double count = std::ceil((end - start) / step);
    const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
    std::vector<double> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = start + static_cast<double>(i) * step;
    return from_host(values.data(), Shape{n}, options);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, const TensorOptions& options) {
    LATTE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
    return from_host(values.data(), shape, options);
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape, const TensorOptions& options) {
    LATTE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
    return from_host(values.data(), shape, options);
}

Tensor rand(const Shape& shape, Generator& gen, const TensorOptions& options, double low, double high) {
    LATTE_CHECK(low <= high, "rand: low ", low, " is above high ", high);
    Tensor out = Tensor::empty(shape, TensorOptions(options).with_requires_grad(false));
    const int64_t n = out.numel();
    if (n > 0) backend_for(options.device).fill_uniform(out.view().data, options.dtype, n, gen.counter_state(), low, high);
    gen.skip(static_cast<uint64_t>(n));
    if (options.requires_grad) out.requires_grad_(true);
    return out;
}

// Element by element on the tensor's device, the same numbers as n calls of gen.normal().
Tensor randn(const Shape& shape, Generator& gen, const TensorOptions& options, double mean, double std) {
    LATTE_CHECK(std >= 0.0, "randn: std must be non-negative, got ", std);
    Tensor out = Tensor::empty(shape, TensorOptions(options).with_requires_grad(false));
    Backend& backend = backend_for(options.device);
    int64_t start = 0, n = out.numel();
    if (n > 0 && gen.has_spare()) {  // the sin left over by an earlier odd draw comes first
        const Tensor first = out.as_strided({}, {}, 0);
        backend.fill(first.view(), mean + std * gen.take_spare());
        start = 1;
    }
    const int64_t rest = n - start, pairs = (rest + 1) / 2;
    if (rest > 0) {
        char* base = static_cast<char*>(out.view().data) + start * static_cast<int64_t>(dtype_size(options.dtype));
        backend.fill_normal(base, options.dtype, rest, gen.counter_state(), mean, std);
        if (rest % 2 == 1) {  // the last pair's sin was not used: it is the generator's spare now
            double c = 0, s = 0;
            random::normal_pair(gen.counter_state(), static_cast<uint64_t>(pairs - 1), c, s);
            gen.set_spare(s);
        }
    }
    gen.skip(static_cast<uint64_t>(2 * pairs));
    if (options.requires_grad) out.requires_grad_(true);
    return out;
}

}  // namespace latte
