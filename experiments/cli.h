// A small flag parser for the `latte` subcommands: --name value, --flag, and --help text
// built from the declared flags.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace latte::cli {

struct Flag {
    std::string name;      // without dashes
    std::string fallback;  // default value ("" for none); for switches, "false"
    std::string help;
    bool is_switch = false;
};

class Args {
public:
    // Parses argv[first..]; throws latte::Error on an unknown flag or a missing value.
    Args(const std::string& command, const std::string& summary, std::vector<Flag> flags, int argc, char** argv,
         int first);
    bool help_requested() const { return help_; }
    std::string usage() const;
    std::string str(const std::string& name) const;
    int64_t integer(const std::string& name) const;
    double number(const std::string& name) const;
    bool on(const std::string& name) const;
    bool given(const std::string& name) const { return values_.count(name) > 0; }

private:
    const Flag& flag(const std::string& name) const;
    std::string command_, summary_;
    std::vector<Flag> flags_;
    std::map<std::string, std::string> values_;
    bool help_ = false;
};

// "f32" or "f64" from a --dtype flag; throws naming the flag otherwise.
DType parse_dtype(const std::string& text);

}  // namespace latte::cli
