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

// Why parse_double refuses `text`, for a message: "expects a finite number" for text that is not a
// decimal number (or is inf or nan); "is too small: its magnitude is below 2.2e-308, the smallest
// normal double" for a nonzero number that underflows (1e-310, which would lose its precision,
// and 1e-400, which would become 0); "is too large: its magnitude is above 1.8e308, the largest
// double" for one that overflows (1e400).
std::string double_problem(const std::string& text);

// The environment variable `name` read strictly: `fallback` when it is unset; else its whole text
// must be an integer in [min, max] (no spaces, suffixes, decimals or hexadecimal; an empty value
// is refused too), or latte::Error says so, naming the variable, its text, the range
// and `meaning` when given: "LATTE_NUM_THREADS must be an integer from 1 to 1024 (threads in
// latte's pool), got '3abc'". Every number latte reads from the environment goes through here.
int64_t env_int(const char* name, int64_t fallback, int64_t min, int64_t max, const std::string& meaning = "");

}  // namespace latte
