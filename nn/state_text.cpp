#include "nn/state_text.h"

#include <charconv>
#include <exception>

#include "core/error.h"
#include "core/parse.h"

namespace latte::nn::state_text {

std::string from_double(double value) {
    char text[64];
    const auto end = std::to_chars(text, text + sizeof text, value).ptr;  // the shortest text that reads back exactly
    return std::string(text, end);
}

std::string from_bool(bool value) { return value ? "true" : "false"; }

const std::string& get(const Metadata& metadata, const std::string& key, const std::string& where) {
    auto it = metadata.find(key);
    LATTE_CHECK(it != metadata.end(), where, ": no '", key, "' entry");
    return it->second;
}

double get_double(const Metadata& metadata, const std::string& key, const std::string& where) {
    const std::string& text = get(metadata, key, where);
    double value = 0;
    LATTE_CHECK(parse_double(text, value), where, ": '", key, "' is '", text, "', not a number");
    return value;
}

int64_t get_int(const Metadata& metadata, const std::string& key, const std::string& where) {
    const std::string& text = get(metadata, key, where);
    int64_t value = 0;
    LATTE_CHECK(parse_int(text, value), where, ": '", key, "' is '", text, "', not an integer");
    return value;
}

uint64_t get_uint(const Metadata& metadata, const std::string& key, const std::string& where) {
    const std::string& text = get(metadata, key, where);
    size_t used = 0;
    uint64_t value = 0;
    try {
        value = std::stoull(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    LATTE_CHECK(used > 0 && used == text.size() && text[0] != '-', where, ": '", key, "' is '", text,
                "', not an unsigned integer");
    return value;
}

bool get_bool(const Metadata& metadata, const std::string& key, const std::string& where) {
    const std::string& text = get(metadata, key, where);
    LATTE_CHECK(text == "true" || text == "false", where, ": '", key, "' is '", text, "', not true or false");
    return text == "true";
}

}  // namespace latte::nn::state_text
