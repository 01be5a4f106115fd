#include "backends/cpu/cpu_features.h"

#include <cstdlib>
#include <fstream>
#include <mutex>

namespace latte::cpu {

CpuFeatures cpu_features() {
    CpuFeatures f;
    __builtin_cpu_init();
    f.vendor = __builtin_cpu_is("intel") ? "intel" : __builtin_cpu_is("amd") ? "amd" : "other";
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);)
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            f.model = colon == std::string::npos ? "" : line.substr(line.find_first_not_of(' ', colon + 1));
            break;
        }
    if (f.model.empty()) f.model = "unknown";
    return f;
}

std::string preferred_openblas_core(const CpuFeatures& f) {
    if (f.avx512_bf16) return "Cooperlake";
    if (f.avx512) return "SkylakeX";
    if (f.avx2 && f.fma) return f.vendor == "amd" ? "Zen" : "Haswell";
    return "";
}

std::string choose_openblas_core() {
    static std::once_flag once;
    static std::string chosen;
    std::call_once(once, [] {
        // An empty value counts as unset (OpenBLAS ignores it too), so latte's choice replaces it.
        if (const char* user = std::getenv("OPENBLAS_CORETYPE"); user && *user) {
            chosen = user;
            return;
        }
        chosen = preferred_openblas_core(cpu_features());
        if (!chosen.empty()) ::setenv("OPENBLAS_CORETYPE", chosen.c_str(), 1);
    });
    return chosen;
}

}  // namespace latte::cpu
