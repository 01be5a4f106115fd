// `latte info`: what latte runs on. The CPU and its vector units, the BLAS library and the
// OpenBLAS kernels it uses (and whether latte chose them or the user did), the threads, and the
// CUDA devices or why there are none, and whether MPI (data-parallel training) is built in. Also
// which library runs float32 and bf16 products (bf16: latte's own kernel with AVX512_BF16, oneDNN with AMX).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <string>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/blas.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/parallel.h"
#include "core/cuda.h"
#include "core/distributed.h"
#include "experiments/cli.h"
#include "experiments/commands.h"

namespace latte::experiments {

namespace {
// OpenBLAS compares core names without case.
bool same_core(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}
}  // namespace

int cmd_info(int argc, char** argv, int first) {
    cli::Args args("info", "Prints the CPU, the BLAS kernels and threads latte uses, and the CUDA devices.", {}, argc,
                   argv, first);
    if (args.help_requested()) {
        std::cout << args.usage();
        return 0;
    }
    const char* user_value = std::getenv("OPENBLAS_CORETYPE");  // before latte may set it
    const bool user_core = user_value != nullptr && *user_value != '\0';  // empty counts as unset
    const cpu::BlasInfo blas = cpu::blas_info();
    const cpu::CpuFeatures f = cpu::cpu_features();
    std::string isa = f.avx512 ? "AVX-512 (F, BW, DQ, VL)" : f.avx2 ? "AVX2" : "SSE only";
    if (f.avx512_bf16) isa += ", AVX512_BF16";
    if (f.fma) isa += ", FMA";
    std::cout << "cpu:      " << f.model << " (" << f.vendor << "), " << isa << "\n"
              << "blas:     " << blas.library << "\n"
              << "          " << blas.config << "\n"
              << "core:     " << blas.core << " ("
              << (user_core && !same_core(blas.core, blas.requested_core)
                      ? "OPENBLAS_CORETYPE=" + blas.requested_core + " set by the user names no core this OpenBLAS "
                        "runs here; it chose its own"
                  : user_core                    ? "OPENBLAS_CORETYPE set by the user"
                  : blas.requested_core.empty() ? "chosen by OpenBLAS"
                                                : "chosen by latte from cpuid")
              << ")\n"
              << "float32:  products on OpenBLAS (" << blas.core << ")\n"
              << "bf16:     " << cpu::bf16_backend_name() << "\n"
              << "threads:  " << cpu::num_threads() << " (latte's pool; LATTE_NUM_THREADS), OpenBLAS at 1 inside it\n";
    std::string why;
    if (cuda::is_available(&why)) {
        std::cout << "cuda:     " << cuda::device_count() << " device(s)\n";
    } else {
        std::cout << "cuda:     none (" << why << ")\n";
    }
    if (!distributed::is_available())
        std::cout << "mpi:      not built in (LATTE_MPI=OFF or libopenmpi-dev missing): no data-parallel training\n";
    else if (distributed::is_initialized())
        std::cout << "mpi:      rank " << distributed::rank() << " of " << distributed::world_size()
                  << " (under mpirun, only rank 0 prints)\n";
    else
        std::cout << "mpi:      built in; start with `mpirun -np N latte train ...` for data-parallel training\n";
    return 0;
}

}  // namespace latte::experiments
