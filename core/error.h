// latte::Error and LATTE_CHECK: every public function reports bad input by throwing
// latte::Error whose message names the op, what went wrong and the shapes involved.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace latte {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}
}  // namespace detail

}  // namespace latte

// LATTE_CHECK(cond, "op: message ", value, ...) throws latte::Error with the parts joined.
#define LATTE_CHECK(cond, ...)                                            \
    do {                                                                  \
        if (!(cond)) throw ::latte::Error(::latte::detail::concat(__VA_ARGS__)); \
    } while (0)

#define LATTE_FAIL(...) throw ::latte::Error(::latte::detail::concat(__VA_ARGS__))
