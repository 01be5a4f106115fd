#include "nn/checkpoint.h"

#include <algorithm>

#include "core/parse.h"
#include "nn/mla.h"
#include "nn/serialize.h"

namespace latte::nn {
namespace {

class Sizes {
public:
    Sizes(const std::map<std::string, std::string>& config, const std::string& who) : config_(config), who_(who) {}

    int64_t get(const std::string& key) const {
        auto it = config_.find(key);
        LATTE_CHECK(it != config_.end(), who_, ": metadata has no '", key, "'");
        int64_t value = 0;
        LATTE_CHECK(parse_int(it->second, value), who_, ": metadata ", key, "='", it->second, "' is not an integer");
        LATTE_CHECK(value > 0, who_, ": metadata ", key, "=", value, " must be positive");
        return value;
    }
    // a * b, named by its keys in the error when it overflows.
    int64_t product(const std::string& a, const std::string& b) const {
        return checked_mul(get(a), get(b), who_ + ": metadata " + a + "*" + b);
    }

private:
    const std::map<std::string, std::string>& config_;
    const std::string& who_;
};

}  // namespace

std::vector<std::pair<std::string, Shape>> attention_parameter_shapes(const std::map<std::string, std::string>& config,
                                                                     const std::string& who) {
    auto kind = config.find("module");
    LATTE_CHECK(kind != config.end(), who, ": metadata has no 'module' (mha, gqa or mla)");
    const Sizes s(config, who);
    std::vector<std::pair<std::string, Shape>> shapes;
    if (kind->second == "mha" || kind->second == "gqa") {
        const std::string kv = kind->second == "mha" ? "H" : "G";
        if (kv == "G")
            LATTE_CHECK(s.get("H") % s.get("G") == 0, who, ": metadata H=", s.get("H"), " is not a multiple of G=",
                        s.get("G"));
        shapes = {{"W_Q.weight", {s.product("H", "D_qk"), s.get("D_1")}},
                  {"W_K.weight", {s.product(kv, "D_qk"), s.get("D_2")}},
                  {"W_V.weight", {s.product(kv, "D_v"), s.get("D_2")}},
                  {"W_O.weight", {s.get("D_1"), s.product("H", "D_v")}}};
    } else if (kind->second == "mla") {
        const int64_t D = s.get("D"), Hd = s.product("H", "d"), r = s.get("r");
        LATTE_CHECK(D == Hd, who, ": metadata D=", D, " must equal H*d=", Hd);
        const LatentOptions o = read_latent_options(config, who + ": metadata");
        const int64_t q_in = o.q_rank > 0 ? o.q_rank : D;
        shapes = {{"W_Q.weight", {Hd, q_in}}, {"W_DKV.weight", {r, D}}, {"W_UK.weight", {Hd, r}},
                  {"W_UV.weight", {Hd, r}}, {"W_O.weight", {D, Hd}}};
        if (o.q_rank > 0) {
            shapes.emplace_back("W_DQ.weight", Shape{o.q_rank, D});
            shapes.emplace_back("q_norm.weight", Shape{o.q_rank});
        }
        if (o.kv_norm) shapes.emplace_back("kv_norm.weight", Shape{r});
    } else {
        LATTE_FAIL(who, ": metadata module='", kind->second, "' is not mha, gqa or mla");
    }
    for (const auto& [name, shape] : shapes) checked_numel(shape, who + ": parameter " + name);
    return shapes;
}

std::shared_ptr<Attention> load_attention(const std::string& path, DType dtype) {
    const std::string who = "load: " + path;
    const SafetensorsHeader header = read_safetensors_header(path);
    const auto shapes = attention_parameter_shapes(header.metadata, who);
    std::map<std::string, Shape> in_file;
    for (const SafetensorsEntry& e : header.tensors) in_file[e.name] = e.shape;
    for (const auto& [name, shape] : shapes) {
        auto it = in_file.find(name);
        LATTE_CHECK(it != in_file.end(), "load: ", path, " has no tensor '", name, "' (its metadata implies ",
                    shape_str(shape), ")");
        LATTE_CHECK(it->second == shape, "load: ", path, ": tensor '", name, "' has shape ", shape_str(it->second),
                    ", its metadata implies ", shape_str(shape));
    }
    for (const SafetensorsEntry& e : header.tensors)
        LATTE_CHECK(std::any_of(shapes.begin(), shapes.end(), [&](const auto& s) { return s.first == e.name; }),
                    "load: ", path, " has tensor '", e.name, "' which a ", header.metadata.at("module"),
                    " module does not have");
    // Only now, with every size confirmed by the file's own bytes, is the module built.
    Generator unused(0);
    auto module = make_attention(header.metadata, unused, dtype);
    load(*module, path);
    return module;
}

}  // namespace latte::nn
