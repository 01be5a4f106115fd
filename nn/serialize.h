// Weights in safetensors, the format Hugging Face and PyTorch users share:
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian data. Tensor names are the PyTorch state_dict names of the spec's
// classes ("W_Q.weight", ...), and the module config goes into __metadata__.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"
#include "module.h"

namespace latte::nn {

struct SafetensorsFile {
    std::vector<std::pair<std::string, Tensor>> tensors;  // in file order, on the cpu
    std::map<std::string, std::string> metadata;
};

// A file's header, validated, without its data.
struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::Float32;
    Shape shape;
    uint64_t begin = 0, end = 0;  // byte range in the data section
};
struct SafetensorsHeader {
    std::vector<SafetensorsEntry> tensors;  // in file order
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0, file_size = 0;
};

// Writes F32/F64/I64 tensors atomically (core/atomic_file.h: never a half-written file, and never
// over something that is not a regular file).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Reads and checks the header of a regular file without touching the data: no repeated names,
// sizes without overflow, and data ranges that tile the data section exactly (no overlaps, no
// gaps, nothing past or short of the end). Throws latte::Error naming the file and the problem.
SafetensorsHeader read_safetensors_header(const std::string& path);
// The header as above, then the data; nothing is allocated before the whole layout is checked.
SafetensorsFile load_safetensors(const std::string& path);

// Throws latte::Error "<what> holds nan at index [3, 1]" at the first nan or inf of `t`.
void check_finite(const Tensor& t, const std::string& what);
// "[3, 1]": the index of the element at row-major position `flat` of `shape`.
std::string index_text(int64_t flat, const Shape& shape);

// A module's parameters and buffers (its state_dict) with its config() as metadata.
void save(const Module& module, const std::string& path);
// Loads every parameter and buffer of `module` from `path`. Names and shapes must match exactly, all tensors
// share one dtype (converted to the parameters'), and every value is finite; everything is
// checked before anything is written, so a bad file leaves the module untouched.
void load(Module& module, const std::string& path);

}  // namespace latte::nn
