#include "experiments/cli.h"

#include <algorithm>
#include <sstream>

#include "core/atomic_file.h"
#include "core/cuda.h"
#include "core/distributed.h"
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
        // --name=value is --name value, as with GNU getopt.
        const size_t eq = arg.find('=');
        const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        const Flag& f = flag(name);
        LATTE_CHECK(!values_.count(name), "latte ", command_, ": --", name, " is given twice");
        if (f.is_switch) {
            LATTE_CHECK(eq == std::string::npos, "latte ", command_, ": --", name, " takes no value, got '", arg, "'");
            values_[name] = "true";
        } else if (eq != std::string::npos) {
            values_[name] = arg.substr(eq + 1);
        } else {
            LATTE_CHECK(i + 1 < argc, "latte ", command_, ": --", name, " needs a value");
            values_[name] = argv[++i];
        }
        LATTE_CHECK(f.path.empty() || !values_[name].empty(), "latte ", command_, ": --", name, " needs a ", f.path,
                    " name, got ''");
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
    if (it != values_.end()) return it->second;
    auto adopted = adopted_.find(name);
    return adopted != adopted_.end() ? adopted->second : flag(name).fallback;
}

void Args::adopt(const std::map<std::string, std::string>& values, const std::string& source) {
    for (const Flag& f : flags_) {
        auto it = values.find(f.name);
        if (it == values.end() || f.is_switch) continue;
        if (given(f.name)) replaced_[f.name] = it->second;
        else adopted_[f.name] = it->second;
    }
    adopted_from_ = source;
}

std::string Args::label(const std::string& name) const {
    return "--" + name + (adopted(name) ? " (from " + adopted_from_ + ")" : "");
}

namespace {

int64_t checked_integer(const std::string& who, const std::string& label, const std::string& text, int64_t min,
                        int64_t max) {
    int64_t value = 0;
    LATTE_CHECK(parse_int(text, value), who, ": ", label, " expects an integer, got '", text, "'");
    if (max == std::numeric_limits<int64_t>::max())
        LATTE_CHECK(value >= min, who, ": ", label, " must be at least ", min, ", got ", value);
    else
        LATTE_CHECK(value >= min && value <= max, who, ": ", label, " must be between ", min, " and ", max, ", got ",
                    value);
    return value;
}

double checked_number(const std::string& who, const std::string& label, const std::string& text, bool positive) {
    double value = 0;
    LATTE_CHECK(parse_double(text, value), who, ": ", label, " ", double_problem(text), ", got '", text, "'");
    LATTE_CHECK(!positive || value > 0, who, ": ", label, " must be positive, got ", text);
    return value;
}

}  // namespace

template <class Valid>
void Args::check_replaced(const std::string& name, Valid valid) const {
    auto it = replaced_.find(name);
    if (it == replaced_.end()) return;
    // The command line's value replaces it, but a value that is not one this flag takes means
    // the source was edited or damaged: it is refused as the flag's own would be.
    valid("--" + name + " (from " + adopted_from_ + ", which the command line's --" + name + " replaces)", it->second);
}

int64_t Args::integer(const std::string& name, int64_t min, int64_t max) const {
    const std::string who = "latte " + command_;
    check_replaced(name, [&](const std::string& l, const std::string& text) { checked_integer(who, l, text, min, max); });
    return checked_integer(who, label(name), str(name), min, max);
}

double Args::number(const std::string& name, bool positive) const {
    const std::string who = "latte " + command_;
    check_replaced(name, [&](const std::string& l, const std::string& text) { checked_number(who, l, text, positive); });
    return checked_number(who, label(name), str(name), positive);
}

bool Args::on(const std::string& name) const { return str(name) == "true"; }

void Args::refuse(const std::string& name, const std::string& reason) const {
    LATTE_CHECK(!given(name), "latte ", command_, ": --", name, " has no effect ", reason);
}

Flag precision_flag() {
    return {"precision", "f32", "matrix products: f32, or bf16 (autocast: inputs rounded to bf16, float32 "
                                "accumulation, weights and optimizer in float32; needs AVX512_BF16 or AMX)"};
}

autocast::Precision precision(const Args& args, Device device) {
    const autocast::Precision p = autocast::parse_precision(args.str("precision"), "latte " + args.command() + ": --precision");
    std::string why;
    LATTE_CHECK(p == autocast::Precision::Float32 || autocast::bf16_available(device, &why), "latte ", args.command(),
                ": --precision bf16 cannot run on ", device.str(), ": ", why);
    return p;
}

Flag timeout_flag() {
    return {"timeout", "300", "under mpirun: seconds a collective waits for the other ranks; then every rank stops, "
                              "naming the rank that did not arrive (0.1 to 86400)"};
}

std::chrono::milliseconds group_timeout(const std::string& command, int argc, char** argv, int first) {
    std::string text = timeout_flag().fallback;
    for (int i = first; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--timeout" && i + 1 < argc) text = argv[++i];
        else if (arg.rfind("--timeout=", 0) == 0) text = arg.substr(10);
    }
    double seconds = 0;
    LATTE_CHECK(parse_double(text, seconds) && seconds >= 0.1 && seconds <= 86400, "latte ", command,
                ": --timeout must be a number of seconds from 0.1 to 86400, got '", text, "'");
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000 + 0.5));
}

DType parse_dtype(const std::string& text) {
    if (text == "f32") return DType::Float32;
    if (text == "f64") return DType::Float64;
    LATTE_FAIL("latte: --dtype must be f32 or f64, got '", text, "'");
}

DType dtype(const Args& args) {
    const std::string text = args.str("dtype");
    LATTE_CHECK(text == "f32" || text == "f64", "latte ", args.command(), ": --dtype must be f32 or f64, got '", text,
                "'");
    return parse_dtype(text);
}

Device device(const Args& args) {
    const std::string text = args.str("device");
    LATTE_CHECK(text.size() < 12, "latte ", args.command(), ": --device '", text, "' is not cpu, cuda or cuda:N");
    Device device = Device::parse(text);
    // Under mpirun, a plain "cuda" is the GPU of this rank's place on its machine: one GPU per rank.
    if (text == "cuda" && distributed::world_size() > 1 && cuda::device_count() > 0)
        device = Device::cuda(distributed::local_rank() % cuda::device_count());
    if (device.is_cuda()) {
        std::string why;
        LATTE_CHECK(cuda::is_available(&why), "latte ", args.command(), ": --device ", args.str("device"),
                    ": CUDA is not usable here (", why, ")");
        LATTE_CHECK(device.index < cuda::device_count(), "latte ", args.command(), ": --device ", args.str("device"),
                    ": this machine has ", cuda::device_count(), " CUDA device(s)");
    }
    return device;
}

void check_output_file(const Args& args, const std::string& flag) {
    check_output_path(args.str(flag), "latte " + args.command() + ": --" + flag);
}

void check_distinct(const Args& args, const std::string& out_flag, const std::string& in_flag) {
    LATTE_CHECK(!same_path(args.str(out_flag), args.str(in_flag)), "latte ", args.command(), ": --", out_flag, " '",
                args.str(out_flag), "' is the same file as --", in_flag, " '", args.str(in_flag), "'");
}

}  // namespace latte::cli
