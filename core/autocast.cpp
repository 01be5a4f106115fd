#include "core/autocast.h"

#include "core/backend.h"
#include "core/error.h"

namespace latte::autocast {
namespace {
thread_local Precision tls_precision = Precision::Float32;
}  // namespace

Guard::Guard(Precision precision) : saved_(tls_precision) { tls_precision = precision; }
Guard::~Guard() { tls_precision = saved_; }

Precision current() { return tls_precision; }

const char* precision_name(Precision precision) { return precision == Precision::BFloat16 ? "bf16" : "f32"; }

Precision parse_precision(const std::string& text, const std::string& where) {
    if (text == "f32") return Precision::Float32;
    if (text == "bf16") return Precision::BFloat16;
    LATTE_FAIL(where, ": the precision must be f32 or bf16, got '", text, "'");
}

bool bf16_available(Device device, std::string* why_not) {
    std::string reason;
    const bool ok = backend_for(device).supports_bf16_products(&reason);
    if (!ok && why_not) *why_not = reason;
    return ok;
}

}  // namespace latte::autocast
