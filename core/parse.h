// Strict parsing of numbers from text (flags, file metadata): the whole text must be the number.
#pragma once
#include <cstdint>
#include <string>

namespace latte {

// False (and `out` untouched) when `text` is empty, starts with a space, has trailing characters
// or is out of range. parse_double reads decimal numbers only (1e-3 and -2.5, not 0x10), and
// refuses inf and nan: no flag or metadata value wants them.
bool parse_int(const std::string& text, int64_t& out);
bool parse_double(const std::string& text, double& out);

}  // namespace latte
