#include "experiments/lm_history.h"

#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "experiments/resume_flags.h"

namespace latte::experiments {

std::string join_held_out(const std::vector<HeldOutPoint>& points) {
    std::string s;
    for (const HeldOutPoint& p : points) {
        if (!s.empty()) s += ',';
        s += std::to_string(p.step);
        s += '/';
        s += std::to_string(p.correct);
        s += '/';
        s += std::to_string(p.total);
    }
    return s;
}

// Checked against the run: steps rising within 1..step, 0 <= correct <= total, total > 0.
std::vector<HeldOutPoint> split_held_out(const std::string& text, int64_t step, const std::string& where) {
    std::vector<HeldOutPoint> out;
    std::stringstream in(text);
    std::string cell;
    while (std::getline(in, cell, ',')) {
        HeldOutPoint p;
        char a = 0, b = 0;
        std::stringstream parts(cell);
        std::string rest;
        const bool parsed = static_cast<bool>(parts >> p.step >> a >> p.correct >> b >> p.total) && a == '/' &&
                            b == '/' && !(parts >> rest);
        LATTE_CHECK(parsed && p.step >= 1 && p.step <= step && (out.empty() || p.step > out.back().step) &&
                        p.total > 0 && p.correct >= 0 && p.correct <= p.total,
                    where, ": bad ", kHeldOutKey, " entry '", cell, "'");
        out.push_back(p);
    }
    return out;
}

void write_held_out_csv(const std::string& path, const std::vector<HeldOutPoint>& points) {
    std::ostringstream out;
    out << "step,held_out_accuracy,held_out_correct,held_out_total\n";
    for (const HeldOutPoint& p : points)
        out << p.step << "," << double(p.correct) / double(p.total) << "," << p.correct << "," << p.total << "\n";
    write_file_atomically(path, out.str(), "latte lm: eval.csv");
}

std::string join_counts(const std::vector<int64_t>& counts) {
    std::string s;
    for (size_t i = 0; i < counts.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(counts[i]);
    }
    return s;
}

std::vector<int64_t> split_counts(const std::string& text, const std::string& where) {
    std::vector<int64_t> out;
    std::stringstream in(text);
    std::string cell;
    while (std::getline(in, cell, ',')) {
        size_t used = 0;
        int64_t v = -1;
        try {
            v = std::stoll(cell, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        LATTE_CHECK(used == cell.size() && v >= 0, where, ": bad ", kCorrectKey, " entry '", cell, "'");
        out.push_back(v);
    }
    return out;
}

// What a checkpoint from before a flag existed ran with: the flag's old behaviour.
std::map<std::string, std::string> flags_before_they_existed(const std::string& attention) {
    return {{"rope", attention == "mla" ? "off" : "on"}, {"rope-pairing", "rotate_half"}, {"latent-norm", "off"},
            {"q-rank", "0"}, {"pairs", "0"}, {"queries", "0"}, {"beta2", "0.999"}, {"clip", "0"}, {"warmup", "0"},
            {"schedule", "constant"}, {"schedule-steps", "0"}, {"min-lr-ratio", "0"}, {"precision", "f32"}};
}

std::vector<ModelFlag> model_flags(const nn::DecoderLMConfig& c) {
    const std::string attention = nn::attention_kind_name(c.attention);
    const bool has_rope = c.attention == nn::AttentionKind::MLARoPE || (c.attention != nn::AttentionKind::MLA && c.rope);
    return {{"attention", "attention", attention},
            {"layers", "layers", std::to_string(c.layers)},
            {"D", "D", std::to_string(c.width)},
            {"H", "H", std::to_string(c.heads)},
            {"G", "G", std::to_string(attention == "gqa" ? c.kv_heads : 0)},
            {"r", "r", std::to_string(c.rank)},
            {"d_R", "d_R", std::to_string(c.rope_dim)},
            {"vocab", "vocab", std::to_string(c.vocab)},
            {"rope", "rope", has_rope ? "on" : "off"},
            {"rope-pairing", "rope_pairing", has_rope ? rope_pairing_name(c.rope_pairing) : "rotate_half"},
            {"latent-norm", "latent_norm", c.latent_norm ? "on" : "off"},
            {"q-rank", "q_rank", std::to_string(c.q_rank)}};
}

// The module.* keys a latte lm checkpoint holds: DecoderLM::config()'s and the run's history.
bool lm_checkpoint_module_key(const std::string& key) {
    static const std::set<std::string> keys{"module", "vocab", "D", "layers", "attention", "H", "d", "G", "r", "d_R",
                                            "mlp_hidden", "norm", "rope_base", "rope", "rope_pairing", "latent_norm",
                                            "q_rank", "lm.answers_correct", "lm.steps_to_99", "lm.held_out"};
    return keys.count(key) > 0;
}

// Before the model is built from a checkpoint's module.*: they must say what its config.* flags
// say, and describe exactly as many parameters as its model.* tensors hold, so that a tampered
// entry (module.mlp_hidden=400000000) is refused before anything is allocated.
void check_lm_checkpoint_model(const TrainCheckpoint& saved, const std::map<std::string, std::string>& flags,
                               const nn::DecoderLMConfig& c, const std::string& who, const std::string& path) {
    const std::string at = who + ": cannot resume from " + path + ": ";
    auto entry = [](const std::map<std::string, std::string>& m, const std::string& key) {
        auto it = m.find(key);
        return it == m.end() ? std::string("(none)") : it->second;
    };
    for (const auto& [key, _] : saved.module_config)
        LATTE_CHECK(lm_checkpoint_module_key(key), at, "it has module.", key,
                    ", which no latte lm checkpoint holds (the model's settings and lm.* history only)");
    for (const ModelFlag& f : model_flags(c)) {
        const std::string stored = entry(flags, f.flag);
        LATTE_CHECK(same_flag_value(stored, f.value), at, "its module.", f.module_key, " is ",
                    entry(saved.module_config, f.module_key), " (", f.flag, " ", f.value, "), but its config.", f.flag,
                    " is ", stored, ": the checkpoint's model and flags disagree");
    }
    int64_t in_file = 0;
    for (const auto& [name, t] : saved.model) in_file += t.numel();  // each tensor was read, so no overflow
    const int64_t expected = nn::decoder_lm_parameter_count(c, at.substr(0, at.size() - 2));
    std::string sizes;
    for (const char* key : {"layers", "D", "H", "d", "G", "r", "d_R", "q_rank", "mlp_hidden", "vocab", "norm"})
        sizes += (sizes.empty() ? "" : ", ") + std::string(key) + "=" + entry(saved.module_config, key);
    LATTE_CHECK(in_file == expected, at, "its module.* (", sizes, ") describe a DecoderLM of ", expected,
                " parameters, but its model.* tensors hold ", in_file, " numbers");
}

}  // namespace latte::experiments
