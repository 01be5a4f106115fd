#include "nn/serialize.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <numeric>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/autograd.h"
#include "nn/json.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

const char* dtype_tag(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "F32";
        case DType::Float64: return "F64";
        case DType::Int64: return "I64";
    }
    return "?";
}

DType parse_dtype(const std::string& tag, const std::string& path, const std::string& name) {
    if (tag == "F32") return DType::Float32;
    if (tag == "F64") return DType::Float64;
    if (tag == "I64") return DType::Int64;
    LATTE_FAIL("load_safetensors: ", path, ": tensor '", name, "' has dtype ", tag,
               ", but latte reads only F32, F64 and I64");
}

// A regular file opened for reading. O_NONBLOCK: opening a FIFO must not wait for a writer
// (it is refused right after, like a folder or a device, whose "size" means nothing).
class InputFile {
public:
    explicit InputFile(const std::string& path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        LATTE_CHECK(fd_ >= 0, "load_safetensors: cannot open '", path, "'");
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd_);
            LATTE_FAIL("load_safetensors: '", path, "' is ", file_type_name(st.st_mode), ", not a regular file");
        }
        size_ = static_cast<uint64_t>(st.st_size);
    }
    ~InputFile() { ::close(fd_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    uint64_t size() const { return size_; }
    void read_at(uint64_t offset, void* out, uint64_t bytes, const std::string& what) const {
        char* p = static_cast<char*>(out);
        while (bytes > 0) {
            const ssize_t n = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            LATTE_CHECK(n > 0, "load_safetensors: ", path_, ": reading ", what, " failed: ",
                        n < 0 ? std::strerror(errno) : "the file ended early (changed while reading?)");
            p += n;
            offset += static_cast<uint64_t>(n);
            bytes -= static_cast<uint64_t>(n);
        }
    }

private:
    std::string path_;
    int fd_ = -1;
    uint64_t size_ = 0;
};

// The ranges must tile [0, data_size): sorted by start, each begins where the previous ended.
void check_tiling(const std::vector<SafetensorsEntry>& entries, uint64_t data_size, const std::string& path) {
    std::vector<size_t> order(entries.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::make_pair(entries[a].begin, entries[a].end) < std::make_pair(entries[b].begin, entries[b].end);
    });
    uint64_t covered = 0;
    const SafetensorsEntry* last = nullptr;
    for (size_t i : order) {
        const SafetensorsEntry& e = entries[i];
        LATTE_CHECK(e.begin >= covered, "load_safetensors: ", path, ": tensors '", last ? last->name : "", "' [",
                    last ? last->begin : 0, ", ", covered, ") and '", e.name, "' [", e.begin, ", ", e.end, ") overlap");
        LATTE_CHECK(e.begin == covered, "load_safetensors: ", path, ": bytes [", covered, ", ", e.begin,
                    ") of the data section belong to no tensor");
        covered = e.end;
        last = &e;
    }
    LATTE_CHECK(covered == data_size, "load_safetensors: ", path, ": bytes [", covered, ", ", data_size,
                ") of the data section belong to no tensor");
}

SafetensorsHeader parse_header(const InputFile& in, const std::string& path) {
    SafetensorsHeader h;
    h.file_size = in.size();
    LATTE_CHECK(h.file_size >= 8, "load_safetensors: ", path, ": file of ", h.file_size,
                " bytes is too short for a safetensors header");
    unsigned char len[8];
    in.read_at(0, len, 8, "the header length");
    uint64_t header_size = 0;
    for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(len[i]) << (8 * i);
    LATTE_CHECK(header_size <= h.file_size - 8 && header_size < (uint64_t(100) << 20), "load_safetensors: ", path,
                ": header length ", header_size, " exceeds the file (", h.file_size, " bytes)");
    std::string text(header_size, '\0');
    in.read_at(8, text.data(), header_size, "the header");
    const json::Value header = json::parse(text, "load_safetensors: " + path);  // refuses repeated keys
    LATTE_CHECK(header.kind == json::Value::Kind::Object, "load_safetensors: ", path, ": header is not a JSON object");

    h.data_start = 8 + header_size;
    const uint64_t data_size = h.file_size - h.data_start;
    for (const auto& [name, entry] : header.object) {
        if (name == "__metadata__") {
            LATTE_CHECK(entry.kind == json::Value::Kind::Object, "load_safetensors: ", path,
                        ": __metadata__ is not an object");
            for (const auto& [k, v] : entry.object) {
                LATTE_CHECK(v.kind == json::Value::Kind::String, "load_safetensors: ", path, ": metadata '", k,
                            "' is not a string");
                h.metadata[k] = v.string;
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
        SafetensorsEntry e;
        e.name = name;
        e.dtype = parse_dtype(dtype->string, path, name);
        for (const json::Value& d : shape->array) {
            LATTE_CHECK(d.kind == json::Value::Kind::Number && d.is_integer && d.integer >= 0,
                        "load_safetensors: ", path, ": tensor '", name, "' has a bad shape entry");
            e.shape.push_back(d.integer);
        }
        for (const json::Value& o : offsets->array)
            LATTE_CHECK(o.kind == json::Value::Kind::Number && o.is_integer && o.integer >= 0, "load_safetensors: ",
                        path, ": tensor '", name, "' has bad data_offsets");
        e.begin = static_cast<uint64_t>(offsets->array[0].integer);
        e.end = static_cast<uint64_t>(offsets->array[1].integer);
        const std::string what = "load_safetensors: " + path + ": tensor '" + name + "'";
        const int64_t numel = checked_numel(e.shape, what);
        const auto want = static_cast<uint64_t>(
            checked_mul(numel, static_cast<int64_t>(dtype_size(e.dtype)), what + " " + dtype->string + " bytes"));
        LATTE_CHECK(e.begin <= e.end && e.end - e.begin == want, what, " ", shape_str(e.shape), " ", dtype->string,
                    " needs ", want, " bytes but its data_offsets [", e.begin, ", ", e.end, ") hold ",
                    e.begin <= e.end ? e.end - e.begin : 0);
        LATTE_CHECK(e.end <= data_size, what, " ends at byte ", e.end, " of a data section of only ", data_size,
                    " bytes (truncated file?)");
        h.tensors.push_back(std::move(e));
    }
    check_tiling(h.tensors, data_size, path);
    return h;
}

// Names and shapes against the module's parameters, one dtype for all: what load() requires.
void check_against(const std::vector<std::pair<std::string, Tensor>>& params,
                   const std::vector<SafetensorsEntry>& entries, const std::string& path) {
    std::map<std::string, const SafetensorsEntry*> by_name;
    for (const SafetensorsEntry& e : entries) by_name[e.name] = &e;
    std::set<std::string> expected;
    for (const auto& [name, p] : params) {
        expected.insert(name);
        auto it = by_name.find(name);
        LATTE_CHECK(it != by_name.end(), "load: ", path, " has no tensor '", name, "' (the module's parameter ",
                    shape_str(p.shape()), ")");
        LATTE_CHECK(it->second->shape == p.shape(), "load: ", path, ": tensor '", name, "' has shape ",
                    shape_str(it->second->shape), ", the module expects ", shape_str(p.shape()));
    }
    std::map<std::string, DType> module_dtype;
    for (const auto& [name, p] : params) module_dtype[name] = p.dtype();
    const SafetensorsEntry* first_float = nullptr;
    for (const SafetensorsEntry& e : entries) {
        LATTE_CHECK(expected.count(e.name), "load: ", path, " has tensor '", e.name, "' which the module does not have");
        // An int64 tensor (a buffer of counts or indices) loads only where the module's is int64;
        // the float tensors share one dtype, which the module's converts.
        const bool module_int = module_dtype.at(e.name) == DType::Int64;
        LATTE_CHECK((e.dtype == DType::Int64) == module_int, "load: ", path, ": tensor '", e.name, "' is ",
                    dtype_tag(e.dtype), "; the module's is ", dtype_name(module_dtype.at(e.name)));
        if (module_int) continue;
        if (!first_float) first_float = &e;
        LATTE_CHECK(e.dtype == first_float->dtype, "load: ", path, ": tensor '", e.name, "' is ", dtype_tag(e.dtype),
                    " but '", first_float->name, "' is ", dtype_tag(first_float->dtype),
                    " (a module's float tensors share one dtype)");
    }
}

std::string index_str(int64_t flat, const Shape& shape) {
    std::vector<int64_t> index(shape.size());
    for (size_t i = shape.size(); i-- > 0;) {
        index[i] = flat % shape[i];
        flat /= shape[i];
    }
    std::string out = "[";
    for (size_t i = 0; i < index.size(); ++i) out += (i ? ", " : "") + std::to_string(index[i]);
    return out + "]";
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

    AtomicFile out(path, "save_safetensors");
    const uint64_t n = text.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));  // little-endian
    out.write(len, 8);
    out.write(text);
    for (const Tensor& c : dense)
        out.write(c.view().data, static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
    out.commit();
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
    const InputFile in(path);
    return parse_header(in, path);
}

SafetensorsFile load_safetensors(const std::string& path) {
    const InputFile in(path);
    const SafetensorsHeader header = parse_header(in, path);
    SafetensorsFile file;
    file.metadata = header.metadata;
    for (const SafetensorsEntry& e : header.tensors) {
        Tensor t = Tensor::empty(e.shape, TensorOptions{}.with_dtype(e.dtype));
        in.read_at(header.data_start + e.begin, t.view().data, e.end - e.begin, "tensor '" + e.name + "'");
        file.tensors.emplace_back(e.name, t);
    }
    return file;
}

std::string index_text(int64_t flat, const Shape& shape) { return index_str(flat, shape); }

void check_finite(const Tensor& t, const std::string& what) {
    if (t.dtype() == DType::Int64 || t.numel() == 0) return;  // integers are always finite
    const Tensor ok = isfinite(t);
    // A sum of zeros and ones is 0 only when every flag is 1, whatever the rounding.
    if (sum(rsub(1.0, ok)).item() == 0) return;
    const std::vector<double> flags = ok.to_vector();
    const auto bad = static_cast<int64_t>(std::find(flags.begin(), flags.end(), 0.0) - flags.begin());
    const double value = contiguous(t).to_vector()[static_cast<size_t>(bad)];
    LATTE_FAIL(what, " holds ", std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf", " at index ",
               index_str(bad, t.shape()));
}

void save(const Module& module, const std::string& path) {
    save_safetensors(path, module.state_dict(), module.config());
}

void load(Module& module, const std::string& path) {
    const StateDict params = module.state_dict();  // parameters and buffers
    // Everything about the file is checked from its header before any tensor is allocated.
    const SafetensorsHeader header = read_safetensors_header(path);
    check_against(params, header.tensors, path);
    auto config = module.config();
    for (const auto& [key, value] : header.metadata) {
        auto it = config.find(key);
        LATTE_CHECK(it == config.end() || it->second == value, "load: ", path, " was saved from a module with ", key,
                    "=", value, ", this one has ", key, "=", it->second);
    }
    const SafetensorsFile file = load_safetensors(path);
    std::vector<SafetensorsEntry> loaded;  // the file may have changed since its header was read
    for (const auto& [name, t] : file.tensors) loaded.push_back({name, t.dtype(), t.shape(), 0, 0});
    check_against(params, loaded, path);
    std::map<std::string, Tensor> by_name(file.tensors.begin(), file.tensors.end());
    for (const auto& [name, t] : file.tensors) check_finite(t, "load: " + path + ": tensor '" + name + "'");
    NoGradGuard no_grad;
    for (const auto& [name, p] : params) copy_(p, to(to(by_name.at(name), p.device()), p.dtype()));
}

}  // namespace latte::nn
