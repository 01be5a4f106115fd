#include "nn/serialize.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "core/autograd.h"
#include "nn/json.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

const char* dtype_tag(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "F32";
        case DType::Float64: return "F64";
    }
    return "?";
}

DType parse_dtype(const std::string& tag, const std::string& path, const std::string& name) {
    if (tag == "F32") return DType::Float32;
    if (tag == "F64") return DType::Float64;
    LATTE_FAIL("load_safetensors: ", path, ": tensor '", name, "' has dtype ", tag,
               ", but latte reads only F32 and F64");
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    std::set<std::string> names;
    std::ostringstream header;
    header << "{";
    bool first = true;
    if (!metadata.empty()) {
        header << "\"__metadata__\":{";
        for (auto it = metadata.begin(); it != metadata.end(); ++it)
            header << (it == metadata.begin() ? "" : ",") << json::quote(it->first) << ":" << json::quote(it->second);
        header << "}";
        first = false;
    }
    std::vector<Tensor> dense;
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        check_defined(t, "save_safetensors", name.c_str());
        LATTE_CHECK(name != "__metadata__" && names.insert(name).second, "save_safetensors: tensor name '", name,
                    "' is reserved or repeated");
        Tensor c = contiguous(to(t.detach(), Device::cpu()));
        const uint64_t bytes = static_cast<uint64_t>(c.numel()) * dtype_size(c.dtype());
        header << (first ? "" : ",") << json::quote(name) << ":{\"dtype\":\"" << dtype_tag(c.dtype())
               << "\",\"shape\":[";
        for (size_t i = 0; i < c.shape().size(); ++i) header << (i ? "," : "") << c.shape()[i];
        header << "],\"data_offsets\":[" << offset << "," << offset + bytes << "]}";
        offset += bytes;
        first = false;
        dense.push_back(c);
    }
    header << "}";
    std::string text = header.str();
    text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        LATTE_CHECK(out.good(), "save_safetensors: cannot open '", tmp, "' for writing");
        const uint64_t n = text.size();
        unsigned char len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));  // little-endian
        out.write(reinterpret_cast<const char*>(len), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const Tensor& c : dense)
            out.write(static_cast<const char*>(c.view().data),
                      static_cast<std::streamsize>(c.numel() * static_cast<int64_t>(dtype_size(c.dtype()))));
        out.flush();
        if (!out.good()) {
            out.close();
            std::remove(tmp.c_str());
            LATTE_FAIL("save_safetensors: writing '", tmp, "' failed (disk full?)");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        LATTE_FAIL("save_safetensors: cannot move '", tmp, "' to '", path, "'");
    }
}

SafetensorsFile load_safetensors(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    LATTE_CHECK(in.good(), "load_safetensors: cannot open '", path, "'");
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    LATTE_CHECK(file_size >= 8, "load_safetensors: ", path, ": file of ", file_size,
                " bytes is too short for a safetensors header");
    unsigned char len[8];
    in.read(reinterpret_cast<char*>(len), 8);
    uint64_t header_size = 0;
    for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(len[i]) << (8 * i);
    LATTE_CHECK(header_size <= file_size - 8 && header_size < (uint64_t(100) << 20), "load_safetensors: ", path,
                ": header length ", header_size, " exceeds the file (", file_size, " bytes)");
    std::string text(header_size, '\0');
    in.read(text.data(), static_cast<std::streamsize>(header_size));
    const json::Value header = json::parse(text, "load_safetensors: " + path);
    LATTE_CHECK(header.kind == json::Value::Kind::Object, "load_safetensors: ", path, ": header is not a JSON object");

    const uint64_t data_start = 8 + header_size, data_size = file_size - data_start;
    SafetensorsFile file;
    for (const auto& [name, entry] : header.object) {
        if (name == "__metadata__") {
            LATTE_CHECK(entry.kind == json::Value::Kind::Object, "load_safetensors: ", path,
                        ": __metadata__ is not an object");
            for (const auto& [k, v] : entry.object) {
                LATTE_CHECK(v.kind == json::Value::Kind::String, "load_safetensors: ", path, ": metadata '", k,
                            "' is not a string");
                file.metadata[k] = v.string;
            }
            continue;
        }
        const json::Value* dtype = entry.find("dtype");
        const json::Value* shape = entry.find("shape");
        const json::Value* offsets = entry.find("data_offsets");
        LATTE_CHECK(entry.kind == json::Value::Kind::Object && dtype && shape && offsets &&
                        dtype->kind == json::Value::Kind::String && shape->kind == json::Value::Kind::Array &&
                        offsets->kind == json::Value::Kind::Array && offsets->array.size() == 2,
                    "load_safetensors: ", path, ": entry '", name, "' needs dtype, shape and two data_offsets");
        const DType dt = parse_dtype(dtype->string, path, name);
        Shape dims;
        for (const json::Value& d : shape->array) {
            LATTE_CHECK(d.kind == json::Value::Kind::Number && d.is_integer && d.integer >= 0 && d.integer < (int64_t(1) << 40),
                        "load_safetensors: ", path, ": tensor '", name, "' has a bad shape entry");
            dims.push_back(d.integer);
        }
        for (const json::Value& o : offsets->array)
            LATTE_CHECK(o.kind == json::Value::Kind::Number && o.is_integer && o.integer >= 0, "load_safetensors: ",
                        path, ": tensor '", name, "' has bad data_offsets");
        const auto begin = static_cast<uint64_t>(offsets->array[0].integer);
        const auto end = static_cast<uint64_t>(offsets->array[1].integer);
        const uint64_t want = static_cast<uint64_t>(shape_numel(dims)) * dtype_size(dt);
        LATTE_CHECK(begin <= end && end - begin == want, "load_safetensors: ", path, ": tensor '", name, "' ",
                    shape_str(dims), " ", dtype->string, " needs ", want, " bytes but its data_offsets [", begin, ", ",
                    end, ") hold ", end - begin);
        LATTE_CHECK(end <= data_size, "load_safetensors: ", path, ": tensor '", name, "' ends at byte ", end,
                    " of a data section of only ", data_size, " bytes (truncated file?)");
        Tensor t = Tensor::empty(dims, TensorOptions{}.with_dtype(dt));
        in.seekg(static_cast<std::streamoff>(data_start + begin));
        in.read(static_cast<char*>(t.view().data), static_cast<std::streamsize>(want));
        LATTE_CHECK(in.good() || want == 0, "load_safetensors: ", path, ": reading tensor '", name, "' failed");
        file.tensors.emplace_back(name, t);
    }
    return file;
}

void save(const Module& module, const std::string& path) {
    save_safetensors(path, module.named_parameters(), module.config());
}

void load(Module& module, const std::string& path) {
    const SafetensorsFile file = load_safetensors(path);
    std::map<std::string, Tensor> by_name(file.tensors.begin(), file.tensors.end());
    const auto params = module.named_parameters();
    std::set<std::string> expected;
    for (const auto& [name, p] : params) {
        expected.insert(name);
        auto it = by_name.find(name);
        LATTE_CHECK(it != by_name.end(), "load: ", path, " has no tensor '", name, "' (the module's parameter ",
                    shape_str(p.shape()), ")");
        LATTE_CHECK(it->second.shape() == p.shape(), "load: ", path, ": tensor '", name, "' has shape ",
                    shape_str(it->second.shape()), ", the module expects ", shape_str(p.shape()));
    }
    for (const auto& [name, _] : file.tensors)
        LATTE_CHECK(expected.count(name), "load: ", path, " has tensor '", name, "' which the module does not have");
    auto config = module.config();
    for (const auto& [key, value] : file.metadata) {
        auto it = config.find(key);
        LATTE_CHECK(it == config.end() || it->second == value, "load: ", path, " was saved from a module with ", key,
                    "=", value, ", this one has ", key, "=", it->second);
    }
    NoGradGuard no_grad;
    for (const auto& [name, p] : params) copy_(p, to(to(by_name.at(name), p.device()), p.dtype()));
}

}  // namespace latte::nn
