#include "core/parse.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <exception>

#include "core/error.h"

namespace latte {
namespace {

template <class T, class Convert>
bool parse_whole(const std::string& text, T& out, Convert convert) {
    // stoll/stod skip leading spaces; the whole text must be the number.
    if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
    size_t used = 0;
    T value{};
    try {
        value = convert(text, &used);
    } catch (const std::exception&) {
        return false;
    }
    if (used == 0 || used != text.size() || !std::isfinite(static_cast<double>(value))) return false;
    out = value;
    return true;
}

}  // namespace

bool parse_int(const std::string& text, int64_t& out) {
    return parse_whole(text, out, [](const std::string& t, size_t* used) { return int64_t(std::stoll(t, used)); });
}

bool parse_double(const std::string& text, double& out) {
    // Decimal only: stod would also read hexadecimal ("0x10" as 16), "inf", "nan" and "infinity".
    const bool has_digit = text.find_first_of("0123456789") != std::string::npos;
    if (!has_digit || text.find_first_not_of("0123456789+-.eE") != std::string::npos) return false;
    return parse_whole(text, out, [](const std::string& t, size_t* used) { return std::stod(t, used); });
}

int64_t env_int(const char* name, int64_t fallback, int64_t min, int64_t max, const std::string& meaning) {
    const char* text = std::getenv(name);
    if (text == nullptr) return fallback;
    int64_t value = 0;
    LATTE_CHECK(parse_int(text, value) && value >= min && value <= max, name, " must be an integer from ", min,
                " to ", max, meaning.empty() ? "" : " (" + meaning + ")", ", got '", text, "'");
    return value;
}

}  // namespace latte
