#include "core/parse.h"

#include <cctype>
#include <cerrno>
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

std::string double_problem(const std::string& text) {
    const bool has_digit = text.find_first_of("0123456789") != std::string::npos;
    if (has_digit && text.find_first_not_of("0123456789+-.eE") == std::string::npos &&
        !std::isspace(static_cast<unsigned char>(text[0]))) {
        // strtod reads what stod refused as out of range: the nearest double, with errno ERANGE.
        char* end = nullptr;
        errno = 0;
        const double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str() + text.size() && errno == ERANGE) {
            if (std::fabs(value) <= 1.0) return "is too small: its magnitude is below 2.2e-308, the smallest normal double";
            return "is too large: its magnitude is above 1.8e308, the largest double";
        }
    }
    return "expects a finite number";
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
