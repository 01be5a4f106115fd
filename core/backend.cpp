#include "core/backend.h"

#include "core/error.h"

namespace latte {

Backend& backend_for(Device device) {
    switch (device.type) {
        case DeviceType::CPU: return cpu_backend();
        case DeviceType::CUDA: {
            std::string why_not;
            Backend* backend = cuda_backend(device.index, &why_not);
            LATTE_CHECK(backend != nullptr, "device ", device.str(), ": ", why_not);
            return *backend;
        }
    }
    LATTE_FAIL("device: unknown device type");
}

void Backend::svd(DType, int64_t m, int64_t n, void*, void*, void*, void*) {
    LATTE_FAIL("svd: no SVD on this backend for a ", m, "x", n, " matrix; move the tensor to the CPU first");
}

void Backend::attention_fwd(const AttentionSizes&, const View&, const View&, const View&, const View&, double*) {
    LATTE_FAIL("attention: no fused attention kernel on this backend");
}

void Backend::attention_bwd(const AttentionSizes&, const View&, const View&, const View&, const View&, const double*,
                            const View&, const View&, const View&, const View&) {
    LATTE_FAIL("attention: no fused attention kernel on this backend");
}

Device Device::parse(const std::string& text) {
    if (text == "cpu") return Device::cpu();
    if (text == "cuda") return Device::cuda(0);
    if (text.rfind("cuda:", 0) == 0) {
        const std::string index = text.substr(5);
        LATTE_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
                    "device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
        return Device::cuda(std::stoi(index));
    }
    LATTE_FAIL("device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
}

}  // namespace latte
