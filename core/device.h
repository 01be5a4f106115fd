// Where a tensor's bytes live. Ops never move data between devices implicitly.
#pragma once
#include <ostream>
#include <string>

namespace latte {

enum class DeviceType { CPU, CUDA };

struct Device {
    DeviceType type = DeviceType::CPU;
    int index = 0;

    static Device cpu() { return {DeviceType::CPU, 0}; }
    static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }

    bool is_cpu() const { return type == DeviceType::CPU; }
    bool is_cuda() const { return type == DeviceType::CUDA; }
    bool operator==(const Device& other) const { return type == other.type && index == other.index; }
    bool operator!=(const Device& other) const { return !(*this == other); }

    std::string str() const {
        switch (type) {
            case DeviceType::CPU: return "cpu";
            case DeviceType::CUDA: return "cuda:" + std::to_string(index);
        }
        return "?";
    }

    // Parses "cpu", "cuda" or "cuda:N"; throws latte::Error on anything else.
    static Device parse(const std::string& text);
};

inline std::ostream& operator<<(std::ostream& out, const Device& device) { return out << device.str(); }

}  // namespace latte
