#include "experiments/resume_flags.h"

#include "core/error.h"
#include "core/parse.h"

namespace latte::experiments {

bool free_on_resume(const std::string& flag) {
    static const std::set<std::string> free{"steps", "log-every", "checkpoint-every", "eval-every", "eval-batches"};
    return free.count(flag) > 0;
}

bool same_flag_value(const std::string& stored, const std::string& given) {
    if (stored == given) return true;
    // Integers compare exactly: through double, seeds past 2^53 would pass for their neighbours.
    int64_t i = 0, j = 0;
    if (parse_int(stored, i) && parse_int(given, j)) return i == j;
    double a = 0, b = 0;
    return parse_double(stored, a) && parse_double(given, b) && a == b;
}

std::string resume_conflict(const std::string& who, const std::string& path, const std::string& flag,
                            const std::string& was, const std::string& now) {
    return detail::concat(who, ": cannot resume from ", path, ": it was written with --", flag, " ", was,
                          ", this run has --", flag, " ", now, " (leave --", flag,
                          " out to keep the checkpoint's; only --steps and the output, progress and device flags may "
                          "change)");
}

void adopt_stored_flags(cli::Args& args, const std::string& path, const std::map<std::string, std::string>& stored,
                        const std::set<std::string>& compared_later) {
    auto shown = [](const std::string& v) { return v.empty() ? std::string("(none)") : v; };
    for (const cli::Flag& f : args.flags()) {
        auto it = stored.find(f.name);
        if (it == stored.end() || !args.given(f.name) || free_on_resume(f.name) || compared_later.count(f.name))
            continue;
        const std::string given = args.str(f.name);
        LATTE_CHECK(same_flag_value(it->second, given), resume_conflict("latte " + args.command(), path, f.name, shown(it->second), shown(given)));
    }
    args.adopt(stored, "the checkpoint " + path);
}

}  // namespace latte::experiments
