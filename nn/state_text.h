// Numbers as exact text for safetensors metadata (optimizer state, training checkpoints):
// doubles in the shortest form that reads back bit for bit; integers in decimal. The readers
// throw latte::Error naming `where` and the key when it is missing or not a number.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace latte::nn::state_text {

using Metadata = std::map<std::string, std::string>;

std::string from_double(double value);
std::string from_bool(bool value);

const std::string& get(const Metadata& metadata, const std::string& key, const std::string& where);
double get_double(const Metadata& metadata, const std::string& key, const std::string& where);
int64_t get_int(const Metadata& metadata, const std::string& key, const std::string& where);
uint64_t get_uint(const Metadata& metadata, const std::string& key, const std::string& where);
bool get_bool(const Metadata& metadata, const std::string& key, const std::string& where);

}  // namespace latte::nn::state_text
