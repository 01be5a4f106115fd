#include "nn/json.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/error.h"

namespace latte::nn::json {
namespace {

class Parser {
public:
    Parser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

    Value document() {
        Value v = value(0);
        skip_space();
        if (pos_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        LATTE_FAIL(what_, ": invalid JSON header at byte ", pos_, ": ", why);
    }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
    }
    char peek() {
        skip_space();
        if (pos_ >= s_.size()) fail("unexpected end");
        return s_[pos_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    bool consume(const char* word) {
        const std::string w(word);
        if (s_.compare(pos_, w.size(), w) == 0) {
            pos_ += w.size();
            return true;
        }
        return false;
    }

    Value value(int depth) {
        if (depth > 64) fail("nesting too deep");
        Value v;
        const char c = peek();
        if (c == '{') {
            v.kind = Value::Kind::Object;
            ++pos_;
            if (peek() == '}') { ++pos_; return v; }
            std::set<std::string> keys;  // a repeated key would let two readers see different values
            for (;;) {
                if (peek() != '"') fail("expected a string key");
                const size_t key_at = pos_;
                std::string key = string_literal();
                if (!keys.insert(key).second) {
                    pos_ = key_at;
                    fail("duplicate key " + quote(key));
                }
                expect(':');
                v.object.emplace_back(std::move(key), value(depth + 1));
                if (peek() == ',') { ++pos_; continue; }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            v.kind = Value::Kind::Array;
            ++pos_;
            if (peek() == ']') { ++pos_; return v; }
            for (;;) {
                v.array.push_back(value(depth + 1));
                if (peek() == ',') { ++pos_; continue; }
                expect(']');
                return v;
            }
        }
        if (c == '"') {
            v.kind = Value::Kind::String;
            v.string = string_literal();
            return v;
        }
        if (consume("true")) { v.kind = Value::Kind::Bool; v.boolean = true; return v; }
        if (consume("false")) { v.kind = Value::Kind::Bool; return v; }
        if (consume("null")) return v;
        return number();
    }

    Value number() {
        const size_t start = pos_;
        if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
        bool integral = true;
        while (pos_ < s_.size()) {
            const char c = s_[pos_];
            if (c >= '0' && c <= '9') { ++pos_; continue; }
            if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; ++pos_; continue; }
            break;
        }
        const std::string text = s_.substr(start, pos_ - start);
        if (text.empty() || text == "-") fail("expected a value");
        Value v;
        v.kind = Value::Kind::Number;
        char* end = nullptr;
        v.number = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size()) fail("bad number '" + text + "'");
        if (integral) {
            errno = 0;
            v.integer = std::strtoll(text.c_str(), nullptr, 10);
            v.is_integer = errno == 0;
        }
        return v;
    }

    std::string string_literal() {
        expect('"');
        std::string out;
        while (pos_ < s_.size()) {
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (c != '\\') { out += c; continue; }
            if (pos_ >= s_.size()) break;
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    if (pos_ + 4 > s_.size() || !std::all_of(s_.begin() + long(pos_), s_.begin() + long(pos_) + 4,
                                                             [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); }))
                        fail("bad \\u escape");
                    const unsigned code = static_cast<unsigned>(std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
                    pos_ += 4;
                    // UTF-8 encode (surrogate pairs are kept as two code units; names never need them).
                    if (code < 0x80) out += static_cast<char>(code);
                    else if (code < 0x800) {
                        out += static_cast<char>(0xC0 | (code >> 6));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (code >> 12));
                        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (code & 0x3F));
                    }
                    break;
                }
                default: fail("bad escape");
            }
        }
        fail("unterminated string");
    }

    const std::string& s_;
    const std::string& what_;
    size_t pos_ = 0;
};

}  // namespace

const Value* Value::find(const std::string& key) const {
    for (const auto& [k, v] : object)
        if (k == key) return &v;
    return nullptr;
}

Value parse(const std::string& text, const std::string& what) { return Parser(text, what).document(); }

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

}  // namespace latte::nn::json
