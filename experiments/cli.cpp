#include "experiments/cli.h"

#include <sstream>

#include "core/error.h"
#include "core/parse.h"

namespace latte::cli {

Args::Args(const std::string& command, const std::string& summary, std::vector<Flag> flags, int argc, char** argv,
           int first)
    : command_(command), summary_(summary), flags_(std::move(flags)) {
    for (int i = first; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            help_ = true;
            continue;
        }
        LATTE_CHECK(arg.rfind("--", 0) == 0, "latte ", command_, ": unexpected argument '", arg, "' (see --help)");
        const std::string name = arg.substr(2);
        const Flag& f = flag(name);
        if (f.is_switch) {
            values_[name] = "true";
        } else {
            LATTE_CHECK(i + 1 < argc, "latte ", command_, ": --", name, " needs a value");
            values_[name] = argv[++i];
        }
    }
}

const Flag& Args::flag(const std::string& name) const {
    for (const Flag& f : flags_)
        if (f.name == name) return f;
    LATTE_FAIL("latte ", command_, ": unknown flag --", name, " (see latte ", command_, " --help)");
}

std::string Args::usage() const {
    std::ostringstream out;
    out << "usage: latte " << command_ << " [flags]\n" << summary_ << "\n\nflags:\n";
    for (const Flag& f : flags_) {
        std::string left = "  --" + f.name + (f.is_switch ? "" : " X");
        left.resize(std::max<size_t>(left.size() + 2, 22), ' ');
        out << left << f.help;
        if (!f.is_switch && !f.fallback.empty()) out << " (default " << f.fallback << ")";
        out << "\n";
    }
    return out.str();
}

std::string Args::str(const std::string& name) const {
    auto it = values_.find(name);
    return it != values_.end() ? it->second : flag(name).fallback;
}

int64_t Args::integer(const std::string& name) const {
    const std::string text = str(name);
    int64_t value = 0;
    LATTE_CHECK(parse_int(text, value), "latte ", command_, ": --", name, " expects an integer, got '", text, "'");
    return value;
}

double Args::number(const std::string& name) const {
    const std::string text = str(name);
    double value = 0;
    LATTE_CHECK(parse_double(text, value), "latte ", command_, ": --", name, " expects a number, got '", text, "'");
    return value;
}

bool Args::on(const std::string& name) const { return str(name) == "true"; }

DType parse_dtype(const std::string& text) {
    if (text == "f32") return DType::Float32;
    if (text == "f64") return DType::Float64;
    LATTE_FAIL("latte: --dtype must be f32 or f64, got '", text, "'");
}

}  // namespace latte::cli
