#include "experiments/lm_summary.h"

#include <cmath>
#include <sstream>

#include "core/atomic_file.h"
#include "nn/json.h"
#include "nn/state_text.h"

namespace latte::experiments {
namespace {

std::string number(double v) { return std::isfinite(v) ? nn::state_text::from_double(v) : "null"; }

}  // namespace

std::string lm_summary_json(const LMRunSummary& s) {
    std::ostringstream o;
    auto str = [&](const char* key, const std::string& v) { o << "  \"" << key << "\": " << nn::json::quote(v) << ",\n"; };
    auto num = [&](const char* key, const std::string& v) { o << "  \"" << key << "\": " << v << ",\n"; };
    o << "{\n";
    str("task", s.task);
    str("attention", s.attention);
    str("name", s.name);
    num("rope", s.rope ? "true" : "false");
    str("rope_pairing", s.rope_pairing);
    num("latent_norm", s.latent_norm ? "true" : "false");
    num("q_rank", std::to_string(s.q_rank));
    for (const auto& [key, v] : {std::pair<const char*, int64_t>{"layers", s.layers}, {"D", s.D}, {"H", s.H},
                                 {"G", s.G}, {"d", s.d}, {"r", s.r}, {"d_R", s.d_R}, {"vocab", s.vocab}, {"L", s.L},
                                 {"batch", s.batch}, {"pairs", s.pairs}, {"queries", s.queries}})
        num(key, std::to_string(v));
    num("lr", number(s.lr));
    num("seconds", number(s.seconds));
    num("seed", std::to_string(s.seed));
    num("steps", std::to_string(s.steps));
    num("eval_every", std::to_string(s.eval_every));
    num("eval_batches", std::to_string(s.eval_batches));
    num("parameters", std::to_string(s.parameters));
    num("held_out_accuracy", number(s.held_out_accuracy));
    num("held_out_correct", std::to_string(s.held_out_correct));
    num("held_out_total", std::to_string(s.held_out_total));
    num("held_out_loss", number(s.held_out_loss));
    num("kv_numbers_per_layer", std::to_string(s.kv_numbers_per_layer));
    num("kv_bytes_per_token", std::to_string(s.kv_bytes_per_token));
    num("steps_to_99", s.steps_to_99 ? std::to_string(*s.steps_to_99) : "null");
    o << "  \"loaded_from\": " << (s.loaded_from.empty() ? "null" : nn::json::quote(s.loaded_from)) << "\n}\n";
    return o.str();
}

void write_lm_summary(const std::string& path, const LMRunSummary& s) {
    write_file_atomically(path, lm_summary_json(s), "latte lm: summary");
}

}  // namespace latte::experiments
