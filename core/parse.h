// Strict parsing of numbers from text (flags, file metadata): the whole text must be the number.
#pragma once
#include <cstdint>
#include <string>

namespace latte {

// False (and `out` untouched) when `text` is empty, has trailing characters or is out of range.
bool parse_int(const std::string& text, int64_t& out);
bool parse_double(const std::string& text, double& out);

}  // namespace latte
