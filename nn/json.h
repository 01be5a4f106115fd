// A small JSON reader and string escaper, enough for safetensors headers: objects, arrays,
// strings, integers (and other numbers, true/false/null, which headers may carry in metadata).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace latte::nn::json {

struct Value {
    enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
    bool boolean = false;
    double number = 0;
    bool is_integer = false;
    int64_t integer = 0;
    std::string string;
    std::vector<Value> array;
    std::vector<std::pair<std::string, Value>> object;  // in file order

    const Value* find(const std::string& key) const;
};

// Parses `text`; throws latte::Error naming `what` (e.g. the file) and the byte offset on bad input,
// including a key repeated within one object.
Value parse(const std::string& text, const std::string& what);
std::string quote(const std::string& s);  // a JSON string literal

}  // namespace latte::nn::json
