// A small flag parser for the `latte` subcommands (--name value, --name=value, --flag, and --help
// text built from the declared flags), plus the checks every command runs on its flags before
// its first line of output.
#pragma once
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/autocast.h"
#include "core/device.h"
#include "core/dtype.h"

namespace latte::cli {

struct Flag {
    std::string name;      // without dashes
    std::string fallback;  // default value ("" for none); for switches, "false"
    std::string help;
    bool is_switch = false;
    std::string path = "";  // "file" or "folder" for a path flag, whose value may not be empty; else ""
};
// A flag naming a file (or a folder): `--save ''` is refused rather than read as "not given".
inline Flag file_flag(std::string name, std::string help, std::string fallback = "") {
    return {std::move(name), std::move(fallback), std::move(help), false, "file"};
}
inline Flag folder_flag(std::string name, std::string fallback, std::string help) {
    return {std::move(name), std::move(fallback), std::move(help), false, "folder"};
}

class Args {
public:
    // Parses argv[first..]; throws latte::Error on an unknown or repeated flag, a missing value,
    // a value given to a switch, or an empty value for a path flag.
    Args(const std::string& command, const std::string& summary, std::vector<Flag> flags, int argc, char** argv,
         int first);
    bool help_requested() const { return help_; }
    std::string usage() const;
    const std::string& command() const { return command_; }
    std::string str(const std::string& name) const;
    // The flag as an integer in [min, max]; throws naming the flag and the value otherwise.
    int64_t integer(const std::string& name, int64_t min = std::numeric_limits<int64_t>::min(),
                    int64_t max = std::numeric_limits<int64_t>::max()) const;
    // A finite number; with `positive`, also > 0.
    double number(const std::string& name, bool positive = false) const;
    bool on(const std::string& name) const;
    // Whether the command line gives the flag (an adopted value does not count).
    bool given(const std::string& name) const { return values_.count(name) > 0; }
    // Values for the flags the command line does not give, from `source` (e.g. "the checkpoint F"):
    // str() returns them instead of the defaults; names that are not flags of this command, and
    // switches, are skipped. Errors about an adopted value name its source. A value the command
    // line replaces is still checked: integer() and number() refuse it as they would the flag's
    // own, naming the source, so a corrupt stored value is never accepted behind a given flag.
    void adopt(const std::map<std::string, std::string>& values, const std::string& source);
    bool adopted(const std::string& name) const { return !given(name) && adopted_.count(name) > 0; }
    const std::vector<Flag>& flags() const { return flags_; }
    // Throws when `name` was given but `reason` says it has no effect ("with --weights").
    void refuse(const std::string& name, const std::string& reason) const;

private:
    const Flag& flag(const std::string& name) const;
    // "--name", or "--name (from SOURCE)" for an adopted value: how errors name the flag.
    std::string label(const std::string& name) const;
    std::string command_, summary_;
    std::vector<Flag> flags_;
    // Checks the source's value of a flag the command line replaces (see adopt) with `valid`.
    template <class Valid>
    void check_replaced(const std::string& name, Valid valid) const;
    std::map<std::string, std::string> values_, adopted_, replaced_;
    std::string adopted_from_;
    bool help_ = false;
};

// --timeout SECONDS of the commands that train data-parallel (train, lm): how long a collective
// waits for the other ranks before every rank stops, naming the one that did not arrive.
Flag timeout_flag();
// The process group's timeout that argv[first..] gives with --timeout (else the flag's default),
// read before the command parses its flags, since ranks join the group first. Throws naming the
// command and the value unless it is a number of seconds in [0.1, 86400].
std::chrono::milliseconds group_timeout(const std::string& command, int argc, char** argv, int first);

// --precision f32|bf16 of train and lm: the matrix products' precision (core/autocast.h).
Flag precision_flag();
// The --precision flag, refused unless `device` runs it (bf16: AVX512_BF16 or AMX, and oneDNN).
autocast::Precision precision(const Args& args, Device device);

// "f32" or "f64" from a --dtype flag; throws naming the flag otherwise.
DType parse_dtype(const std::string& text);
// The --dtype flag (f32 or f64), naming the command when it is neither.
DType dtype(const Args& args);
// The --device flag, refused unless usable here (a CUDA device that exists).
Device device(const Args& args);

// Output checks, run while validating: "latte <command>: --<flag> ..." errors.
// A file to be written: folder exists and is writable, and it is absent or a regular file.
void check_output_file(const Args& args, const std::string& flag);
// Refuses --<out_flag> naming the same file as --<in_flag> (same_path: the same canonical path, or
// the same device and inode).
void check_distinct(const Args& args, const std::string& out_flag, const std::string& in_flag);

}  // namespace latte::cli
