// What this CPU can run, and which OpenBLAS kernels ("core") fit it. Debian's OpenBLAS 0.3.21
// does not recognise some newer CPUs (Intel family 6 model 207) and falls back to its generic
// Prescott kernels, 4-6x slower; latte loads OpenBLAS itself (backends/cpu/blas.cpp) after
// naming the core that cpuid says fits, unless the user set OPENBLAS_CORETYPE.
#pragma once
#include <string>

namespace latte::cpu {

struct CpuFeatures {
    std::string model;   // /proc/cpuinfo's model name
    std::string vendor;  // "intel", "amd" or "other"
    bool avx2 = false, fma = false, avx512 = false /* F, BW, DQ and VL */, avx512_bf16 = false;
};
CpuFeatures cpu_features();

// The OpenBLAS core for these features: Cooperlake (AVX-512 with BF16), SkylakeX (AVX-512),
// Zen (AMD with AVX2 + FMA), Haswell (others with AVX2 + FMA), or "" (let OpenBLAS choose).
std::string preferred_openblas_core(const CpuFeatures& features);

// Sets OPENBLAS_CORETYPE to the preferred core unless the user set it (theirs always wins; an
// empty value counts as unset). OpenBLAS ignores a name it does not know and picks a core itself:
// `latte info` then shows both.
// Returns the value OpenBLAS will read ("" if none). Must run before OpenBLAS is loaded.
std::string choose_openblas_core();

}  // namespace latte::cpu
