// Matmul throughput: latte::matmul beside a direct cblas_sgemm on the same shapes, in one run.
// Both go through the OpenBLAS that latte loaded, so both run the same kernels. fma_peak gives
// the ceiling above both: the float32 FMA rate of all cores, with no memory traffic at all.
// Then attention with a learned temperature: a tensor scale on the fused kernel, beside the same
// attention composed from ops and beside the fused kernel with a plain number.
// Then the float32 libraries side by side on latte's training shapes (OpenBLAS as latte runs it
// and with its own threads, oneDNN's matmul, BLIS) and bf16 products (gemm_bf16, and oneDNN's
// bf16 matmul as gemm_bf16_onednn) beside them,
// each as GFLOP/s and a percentage of the float32 FMA peak (and of bf16_peak, the vdpbf16ps rate).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <utility>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/bf16_tile.h"
#include "backends/cpu/blas.h"
#include "backends/cpu/dnnl_matmul.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/shared_library.h"
#include "experiments/bench/bench_common.h"
#include "nn/attention.h"
#include "ops/ops.h"

namespace {

using namespace latte;

void set_flops(benchmark::State& state, double flops_per_iter) {
    // Prints as "FLOP=197G/s": the rate adds the "/s", the name carries no unit of its own.
    state.counters["FLOP"] = benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate);
}

// A peak is a ceiling, and other work on the machine only lowers a reading (single medians ran
// up to 30% low on a shared machine): "ceiling_GFLOPs" is the rate of the fastest step.
void set_ceiling(benchmark::State& state, double flops_per_step) {
    state.counters["ceiling_GFLOPs"] = flops_per_step / (state.counters["min_ms"] * 1e6);
}

// latte: (batch, m, k) @ (batch, k, n) float32.
void BM_latte_matmul(benchmark::State& state) {
    const int64_t batch = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
    Generator gen(1);
    Tensor a = randn(batch > 1 ? Shape{batch, m, k} : Shape{m, k}, gen);
    Tensor b = randn(batch > 1 ? Shape{batch, k, n} : Shape{k, n}, gen);
    bench::StepTimes times;
    for (auto _ : state) times.time([&] { benchmark::DoNotOptimize(matmul(a, b).view().data); });
    times.report(state);
    set_flops(state, 2.0 * batch * m * n * k);
}

// The same products as direct cblas_sgemm calls, one per batch: the ceiling latte should reach.
void BM_cblas_sgemm(benchmark::State& state) {
    const int64_t batch = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
    Generator gen(1);
    std::vector<float> a = randn({batch, m, k}, gen).to_vector<float>();
    std::vector<float> b = randn({batch, k, n}, gen).to_vector<float>();
    std::vector<float> c(static_cast<size_t>(batch * m * n));
    // OpenBLAS with all its threads, as a program calling it directly would run it (latte keeps
    // OpenBLAS at one thread and splits the work over its own pool).
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            for (int64_t i = 0; i < batch; ++i)
                cpu::direct_sgemm(threads, m, n, k, a.data() + i * m * k, b.data() + i * k * n, c.data() + i * m * n);
            benchmark::DoNotOptimize(c.data());
        });
    times.report(state);
    set_flops(state, 2.0 * batch * m * n * k);
}

// One thread's float32 FMA chains: 12 independent accumulators hide the FMA latency, so the loop
// runs at the core's FMA throughput. Returns the FLOP done; the sum keeps the work observable.
constexpr int kChains = 12;

__attribute__((target("avx512f"))) double fma_chains_avx512(int64_t rounds, float* sink) {
    __m512 acc[kChains];
    const __m512 scale = _mm512_set1_ps(0.999999f), bias = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], scale, bias);
    for (int i = 0; i < kChains; ++i) *sink += _mm512_reduce_add_ps(acc[i]);
    return 2.0 * 16 * kChains * static_cast<double>(rounds);
}

__attribute__((target("avx2,fma"))) double fma_chains_avx2(int64_t rounds, float* sink) {
    __m256 acc[kChains];
    const __m256 scale = _mm256_set1_ps(0.999999f), bias = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], scale, bias);
    alignas(32) float lanes[8];
    for (int i = 0; i < kChains; ++i) {
        _mm256_store_ps(lanes, acc[i]);
        for (float v : lanes) *sink += v;
    }
    return 2.0 * 8 * kChains * static_cast<double>(rounds);
}

double fma_chains_scalar(int64_t rounds, float* sink) {
    float acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = static_cast<float>(i);
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = std::fma(acc[i], 0.999999f, 1e-7f);
    for (float v : acc) *sink += v;
    return 2.0 * kChains * static_cast<double>(rounds);
}

// bf16 dot products (vdpbf16ps: 32 bf16 products summed pairwise into 16 float32 lanes, 64 FLOP)
// in independent chains: the rate a bf16 matmul cannot pass, as fma_chains is for float32.
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) double bf16_chains(int64_t rounds, float* sink) {
    __m512 acc[kChains];
    const __m512i one = _mm512_set1_epi16(0x3f80), tiny = _mm512_set1_epi16(0x3580);  // 1 and 2^-20
    const __m512bh x = reinterpret_cast<const __m512bh&>(one), y = reinterpret_cast<const __m512bh&>(tiny);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    for (int i = 0; i < kChains; ++i) *sink += _mm512_reduce_add_ps(acc[i]);
    return 2.0 * 32 * kChains * static_cast<double>(rounds);
}

bool has_bf16_dot() { return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw"); }

// Runs chains(rounds, sink) on every hardware thread at once; returns the FLOP done.
double all_cores(double (*chains)(int64_t, float*), int64_t rounds, std::vector<float>& sinks) {
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    sinks.resize(static_cast<size_t>(threads) * 16);  // a cache line apart
    std::vector<std::thread> pool;
    std::vector<double> done(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] { done[t] = chains(rounds, &sinks[static_cast<size_t>(t) * 16]); });
    for (auto& thread : pool) thread.join();
    double flops = 0;
    for (double d : done) flops += d;
    return flops;
}

double (*float32_chains())(int64_t, float*) {
    return __builtin_cpu_supports("avx512f")                                       ? fma_chains_avx512
           : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? fma_chains_avx2
                                                                                   : fma_chains_scalar;
}

// The float32 arithmetic peak of the machine: FMA chains on every core at once, in the widest
// vectors the CPU has. No float32 matmul, ours or OpenBLAS's, can beat it, so a training step's
// matmul FLOP divided by this rate is a floor on its time.
void BM_fma_peak(benchmark::State& state) {
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    const int64_t rounds = 4'000'000;  // about 10 ms per thread at AVX-512 speed
    double flops = 0;
    std::vector<float> sinks;
    bench::StepTimes times;
    for (auto _ : state) times.time([&] { flops = all_cores(float32_chains(), rounds, sinks); });
    times.report(state);
    benchmark::DoNotOptimize(sinks.data());
    set_flops(state, flops);
    set_ceiling(state, flops);
    state.SetLabel(std::string(avx512 ? "avx512" : avx2 ? "avx2+fma" : "scalar") + ", " +
                   std::to_string(threads) + " threads");
}

// The same for bf16 dot products (registered only where the CPU has AVX512_BF16).
void BM_bf16_peak(benchmark::State& state) {
    const int64_t rounds = 2'000'000;
    double flops = 0;
    std::vector<float> sinks;
    bench::StepTimes times;
    for (auto _ : state) times.time([&] { flops = all_cores(bf16_chains, rounds, sinks); });
    times.report(state);
    benchmark::DoNotOptimize(sinks.data());
    set_flops(state, flops);
    set_ceiling(state, flops);
    state.SetLabel("vdpbf16ps, " + std::to_string(std::thread::hardware_concurrency()) + " threads");
}

// The fastest of 5 all-core runs of `chains`, in GFLOP/s (a ceiling, as set_ceiling).
double best_rate(double (*chains)(int64_t, float*), int64_t rounds) {
    std::vector<double> rates;
    std::vector<float> sinks;
    for (int i = 0; i < 5; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const double flops = all_cores(chains, rounds, sinks);
        rates.push_back(flops / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e9);
    }
    return *std::max_element(rates.begin(), rates.end());
}

// The peaks the percentages divide by, measured once per run (as fma_peak and bf16_peak do).
double peak_gflops(bool bf16) {
    static const double float32 = best_rate(float32_chains(), 4'000'000);
    static const double bf16_rate = has_bf16_dot() ? best_rate(bf16_chains, 2'000'000) : 0.0;
    return bf16 ? bf16_rate : float32;
}

// Forward and backward of self-attention over projections q, k, v (B 8, L 128, H 8, d 32: the
// small config's heads) with a per-head temperature, causal. `form` picks how:
//   0 the fused kernel with a tensor scale (H), which gets its gradient;
//   1 the same attention composed from ops (what a learned temperature needed before);
//   2 the fused kernel with a plain number (no temperature: the floor).
void attention_temperature(benchmark::State& state, int form) {
    const int64_t B = 8, L = 128, H = 8, d = 32;
    Generator gen(3);
    const TensorOptions grad = TensorOptions{}.with_requires_grad(true);
    const Tensor q = randn({B, L, H * d}, gen, grad), k = randn({B, L, H * d}, gen, grad),
                 v = randn({B, L, H * d}, gen, grad);
    const Tensor temperature = full({H}, 1.0 / std::sqrt(double(d)), grad);
    const Tensor weights = randn({B, L, H * d}, gen);  // the loss sum(out * weights) reaches every output
    auto composed = [&] {
        // (B, H, L, d) heads, scores scaled per head, softmax, then back to (B, L, H*d).
        auto heads = [&](const Tensor& t) { return t.reshape({B, L, H, d}).permute({0, 2, 1, 3}); };
        Tensor scores = heads(q).matmul(heads(k).transpose(-1, -2)) * temperature.reshape({1, H, 1, 1});
        scores = scores + nn::causal_mask(L, L, q.options());
        return scores.softmax(-1).matmul(heads(v)).permute({0, 2, 1, 3}).reshape({B, L, H * d});
    };
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            const Tensor out = form == 0   ? nn::grouped_attention(q, k, v, H, H, true, temperature)
                               : form == 1 ? composed()
                                           : nn::grouped_attention(q, k, v, H, H, true, 1.0 / std::sqrt(double(d)));
            (out * weights).sum().backward();
        });
    times.report(state);
    state.SetLabel(form == 0 ? "fused, tensor scale" : form == 1 ? "composed from ops" : "fused, number");
}

// latte's training shapes: `batch` products of op(A) (m x k) and op(B) (k x n). A Linear layer's
// forward is x W^T (NT), its input gradient dy W (NN), its weight gradient dy^T x (TN).
struct GemmShape {
    const char* name;
    int64_t batch, m, k, n;
    bool ta, tb;
};
const GemmShape kTrainShapes[] = {
    {"small_linear_fwd", 1, 1024, 256, 256, false, true},  // B*L 1024, D 256
    {"small_linear_dx", 1, 1024, 256, 256, false, false},
    {"small_linear_dw", 1, 256, 1024, 256, true, false},
    {"medium_linear_fwd", 1, 4096, 512, 512, false, true},  // B*L 4096, D 512
    {"medium_linear_dx", 1, 4096, 512, 512, false, false},
    {"medium_linear_dw", 1, 512, 4096, 512, true, false},
    {"medium_mla_down", 1, 4096, 512, 128, false, true},  // W_DKV y, r 128
    {"lm_mlp_up", 1, 2048, 256, 1024, false, true},       // SwiGLU, width 4D
    {"lm_mlp_down", 1, 2048, 1024, 256, false, true},
    {"small_scores", 64, 128, 32, 128, false, true},  // q k^T per head, B*H 64, L 128, d 32
    {"small_pv", 64, 128, 128, 32, false, false},
    {"medium_scores", 128, 256, 64, 256, false, true},  // B*H 128, L 256, d 64
    {"medium_pv", 128, 256, 256, 64, false, false},
};

enum class Lib { latte, openblas, onednn, blis, bf16, onednn_bf16 };

// cblas_sgemm as OpenBLAS and BLIS both export it, with the standard CBLAS enum values (row-major
// 101, no transpose 111, transpose 112): no cblas.h needed, and either library's fits.
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);

struct CblasLib {
    Sgemm sgemm = nullptr;
    void (*openblas_threads)(int) = nullptr;
    void (*blis_threads)(int64_t) = nullptr;  // BLIS counts in dim_t
    void set_threads(int n) const { openblas_threads ? openblas_threads(n) : blis_threads(n); }
    std::string label, error;
};

// OpenBLAS is the library latte already loaded (dlopen hands back the same one); BLIS is optional.
CblasLib load_cblas(bool blis) {
    CblasLib lib;
    try {
        void* handle = blis ? cpu::open_library("BLIS", {"libblis.so.4", "libblis.so"}, "libblis4")
                            : cpu::open_library("blas", {"libopenblas.so.0", "libopenblas.so"}, "libopenblas0");
        cpu::bind_symbol(handle, "bench", "cblas_sgemm", lib.sgemm);
        if (blis)
            cpu::bind_symbol(handle, "BLIS", "bli_thread_set_num_threads", lib.blis_threads);
        else
            cpu::bind_symbol(handle, "blas", "openblas_set_num_threads", lib.openblas_threads);
        if (blis) {
            const char* (*version)() = nullptr;
            int64_t (*arch_id)() = nullptr;
            const char* (*arch_name)(int64_t) = nullptr;
            cpu::bind_symbol(handle, "BLIS", "bli_info_get_version_str", version);
            cpu::bind_symbol(handle, "BLIS", "bli_arch_query_id", arch_id);
            cpu::bind_symbol(handle, "BLIS", "bli_arch_string", arch_name);
            lib.label = std::string("BLIS ") + version() + " " + arch_name(arch_id());
        } else {
            lib.label = "OpenBLAS " + cpu::blas_info().core;
        }
    } catch (const Error& e) {
        lib.error = e.what();
    }
    return lib;
}

const CblasLib& cblas(bool blis) {
    static const CblasLib openblas = load_cblas(false), blis_lib = load_cblas(true);
    return blis ? blis_lib : openblas;
}

// One training shape on one library: GFLOP/s from the median step, and that rate as a percentage
// of the float32 FMA peak (bf16 also of the bf16 peak). Libraries other than latte multiply each
// product on all of latte's threads through their own threading.
void BM_library_gemm(benchmark::State& state, const GemmShape& s, Lib lib) {
    const double peak32 = peak_gflops(false), peak16 = peak_gflops(true);  // measured before timing
    Generator gen(1);
    const int64_t a_size = s.m * s.k, b_size = s.k * s.n, c_size = s.m * s.n;
    const Shape a_shape = s.ta ? Shape{s.batch, s.k, s.m} : Shape{s.batch, s.m, s.k};
    const Shape b_shape = s.tb ? Shape{s.batch, s.n, s.k} : Shape{s.batch, s.k, s.n};
    const Tensor a = randn(a_shape, gen), b = randn(b_shape, gen);
    const Tensor op_a = s.ta ? a.transpose(-1, -2) : a, op_b = s.tb ? b.transpose(-1, -2) : b;
    const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
    std::vector<float> c(static_cast<size_t>(s.batch * c_size));
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    const int threads = cpu::num_threads();
    std::string label;
    auto product = [&](int64_t i) {
        const float* ai = av.data() + i * a_size;
        const float* bi = bv.data() + i * b_size;
        float* ci = c.data() + i * c_size;
        if (lib == Lib::onednn) {
            cpu::dnnl_matmul(cpu::DnnlInput::f32, s.ta, s.tb, s.m, s.n, s.k, 1.0f, ai, lda, bi, ldb, 0.0f, ci, s.n);
        } else if (lib == Lib::bf16) {
            cpu::gemm_bf16(s.ta, s.tb, s.m, s.n, s.k, 1.0f, ai, lda, bi, ldb, 0.0f, ci, s.n);
        } else if (lib == Lib::onednn_bf16) {
            cpu::gemm_bf16_onednn(s.ta, s.tb, s.m, s.n, s.k, 1.0f, ai, lda, bi, ldb, 0.0f, ci, s.n);
        } else {
            const CblasLib& l = cblas(lib == Lib::blis);
            l.set_threads(threads);  // latte sets OpenBLAS back to 1 thread on its own calls
            l.sgemm(101, s.ta ? 112 : 111, s.tb ? 112 : 111, static_cast<int>(s.m),
                    static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, ai, static_cast<int>(lda), bi,
                    static_cast<int>(ldb), 0.0f, ci, static_cast<int>(s.n));
        }
    };
    bench::guarded(state, [&] {
        switch (lib) {
            case Lib::latte: label = "latte::matmul: OpenBLAS " + cpu::blas_info().core + " tiles on latte's pool"; break;
            case Lib::openblas: label = cblas(false).label + ", its own threads"; break;
            case Lib::blis: label = cblas(true).label; break;
            case Lib::onednn: label = "oneDNN " + cpu::dnnl_matmul_impl(cpu::DnnlInput::f32, s.ta, s.tb, s.m, s.n, s.k); break;
            case Lib::bf16: label = "bf16 " + cpu::bf16_backend_name(); break;
            case Lib::onednn_bf16:
                label = "bf16 oneDNN " + cpu::dnnl_matmul_impl(cpu::DnnlInput::bf16, s.ta, s.tb, s.m, s.n, s.k);
                break;
        }
        auto step = [&] {
            if (lib == Lib::latte) {
                benchmark::DoNotOptimize(matmul(op_a, op_b).view().data);
            } else {
                for (int64_t i = 0; i < s.batch; ++i) product(i);
                benchmark::DoNotOptimize(c.data());
            }
        };
        // Untimed steps first, for 0.2 s (threads woken, scratch grown, the clock up): without
        // them the first case of a run read 18-39% of the bf16 peak, and 90% when run later.
        const auto warm_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        do step();
        while (std::chrono::steady_clock::now() < warm_until);
        bench::StepTimes times;
        for (auto _ : state) times.time(step);
        times.report(state);
    });
    const double flops = 2.0 * s.batch * s.m * s.n * s.k;
    set_flops(state, flops);
    const double gflops = flops / (state.counters["median_ms"] * 1e6);
    state.counters["pct_fp32_peak"] = 100.0 * gflops / peak32;
    if ((lib == Lib::bf16 || lib == Lib::onednn_bf16) && peak16 > 0)
        state.counters["pct_bf16_peak"] = 100.0 * gflops / peak16;
    state.SetLabel(label);
}

// Registers the library cases that can run here; says on stderr which cannot, and why.
void register_libraries(const bench::CommonFlags& flags) {
    std::string dnnl_why, bf16_why;
    const bool dnnl = cpu::dnnl_available(&dnnl_why), bf16 = cpu::bf16_supported(&bf16_why);
    const bool blis = cblas(true).error.empty();
    if (!dnnl) std::fprintf(stderr, "bench_ops: the onednn cases are skipped: %s\n", dnnl_why.c_str());
    if (!bf16) std::fprintf(stderr, "bench_ops: the bf16 cases are skipped: %s\n", bf16_why.c_str());
    if (!blis) std::fprintf(stderr, "bench_ops: the blis cases are skipped: %s\n", cblas(true).error.c_str());
    const std::pair<const char*, Lib> libs[] = {{"latte", Lib::latte}, {"openblas", Lib::openblas},
                                                {"onednn", Lib::onednn},       {"blis", Lib::blis},
                                                {"bf16", Lib::bf16},           {"onednn_bf16", Lib::onednn_bf16}};
    for (const GemmShape& shape : kTrainShapes)
        for (const auto& [name, lib] : libs) {
            if ((lib == Lib::onednn && !dnnl) || (lib == Lib::bf16 && !bf16) || (lib == Lib::blis && !blis) ||
                (lib == Lib::onednn_bf16 && !(dnnl && bf16)))
                continue;
            auto* b = benchmark::RegisterBenchmark((std::string("gemm/") + shape.name + "/" + name).c_str(),
                                                   [&shape, lib = lib](benchmark::State& st) { BM_library_gemm(st, shape, lib); });
            bench::apply_steps(b->Unit(benchmark::kMillisecond)->UseRealTime(), flags);
        }
}

// The fused attention's tile products on one thread, as its tiles call them (128 query rows, up
// to 512 keys, head width d): gemm_tile<float> (OpenBLAS, one thread) beside gemm_tile_bf16
// (autocast(bf16)), as GFLOP/s and a percentage of bf16_peak (all threads) and of the same
// vdpbf16ps chains on one thread (on 2 vCPUs that share a core, one thread gets most of the core).
struct TileShape {
    const char* name;
    bool ta, tb;
    int64_t m, n, k;
};
const TileShape kTileShapes[] = {
    {"small_qk", false, true, 128, 128, 32},   // S = Q K^T, L 128, d 32
    {"small_pv", false, false, 128, 32, 128},  // O += P V (and dQ += dS K)
    {"small_dv", true, false, 128, 32, 128},   // dV += P^T dO (and dK += dS^T Q)
    {"medium_qk", false, true, 128, 256, 64},  // L 256, d 64
    {"medium_pv", false, false, 128, 64, 256},
    {"medium_dv", true, false, 256, 64, 128},
    {"long_qk", false, true, 128, 512, 64},  // a full 128 x 512 tile, d 64
    {"long_pv", false, false, 128, 64, 512},
    {"long_dv", true, false, 512, 64, 128},
    {"d128_qk", false, true, 128, 512, 128},  // d 128
    {"d128_pv", false, false, 128, 128, 512},
};

// bf16_chains on the calling thread alone: the median of 5 runs, in GFLOP/s (0 without AVX512_BF16).
double one_thread_bf16_peak() {
    static const double rate = [] {
        if (!has_bf16_dot()) return 0.0;
        std::vector<double> rates;
        float sink = 0;
        for (int i = 0; i < 5; ++i) {
            const auto start = std::chrono::steady_clock::now();
            const double flops = bf16_chains(2'000'000, &sink);
            rates.push_back(flops / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e9);
        }
        benchmark::DoNotOptimize(sink);
        std::sort(rates.begin(), rates.end());
        return rates[2];
    }();
    return rate;
}

void BM_attention_tile(benchmark::State& state, const TileShape& s, bool bf16) {
    const double peak16 = peak_gflops(true), thread16 = one_thread_bf16_peak();  // measured before timing
    Generator gen(1);
    const int64_t a_rows = s.ta ? s.k : s.m, a_cols = s.ta ? s.m : s.k;
    const int64_t b_rows = s.tb ? s.n : s.k, b_cols = s.tb ? s.k : s.n;
    const std::vector<float> a = randn({a_rows, a_cols}, gen).to_vector<float>();
    const std::vector<float> b = randn({b_rows, b_cols}, gen).to_vector<float>();
    std::vector<float> c(static_cast<size_t>(s.m * s.n));
    constexpr int kRepeats = 100;  // products per timed step (one is 5-100 us)
    bench::guarded(state, [&] {
        bench::StepTimes times;
        for (auto _ : state)
            times.time([&] {
                for (int r = 0; r < kRepeats; ++r) {
                    if (bf16)
                        cpu::gemm_tile_bf16(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), a_cols, b.data(), b_cols, 0.0f,
                                            c.data(), s.n);
                    else
                        cpu::gemm_tile<float>(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), a_cols, b.data(), b_cols,
                                              0.0f, c.data(), s.n);
                }
                benchmark::DoNotOptimize(c.data());
            });
        times.report(state);
    });
    const double flops = 2.0 * kRepeats * s.m * s.n * s.k;
    set_flops(state, flops);
    const double gflops = flops / (state.counters["median_ms"] * 1e6);
    if (peak16 > 0) state.counters["pct_bf16_peak"] = 100.0 * gflops / peak16;
    if (thread16 > 0) state.counters["pct_bf16_1thread"] = 100.0 * gflops / thread16;
    state.SetLabel(std::string(bf16 ? "gemm_tile_bf16" : "gemm_tile<float>") + ", 1 thread, " +
                   std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
                   (s.ta ? " A^T" : "") + (s.tb ? " B^T" : ""));
}

void register_attention_tiles(const bench::CommonFlags& flags) {
    for (const TileShape& shape : kTileShapes)
        for (bool bf16 : {false, true}) {
            auto* b = benchmark::RegisterBenchmark(
                (std::string("attention_tile_bf16/") + shape.name + (bf16 ? "/bf16" : "/f32")).c_str(),
                [&shape, bf16](benchmark::State& st) { BM_attention_tile(st, shape, bf16); });
            bench::apply_steps(b->Unit(benchmark::kMillisecond)->UseRealTime(), flags);
        }
}

const char* kUsage = "bench_ops [--steps n] [--benchmark_...]";

void print_help() {
    std::printf(
        "bench_ops: latte::matmul beside direct cblas_sgemm calls on the same shapes, and the CPU's float32\n"
        "FMA peak (every core, no memory traffic): the ceiling above both. Then attention (forward and\n"
        "backward) with a learned per-head temperature: fused with a tensor scale, composed from ops, and\n"
        "fused with a plain number. Then latte's training shapes on each float32 library (latte's path, OpenBLAS\n"
        "with its threads, oneDNN, BLIS) and as bf16 products, with GFLOP/s and the percentage of the float32\n"
        "FMA peak (fma_peak) and of the bf16 dot-product peak (bf16_peak).\n"
        "  --steps N           timed steps per case (default %lld)\n"
        "Google Benchmark's flags:\n", (long long)bench::kDefaultSteps);
    benchmark::PrintDefaultHelp();
}

// Square 1024, a Linear-shaped 4096x512x512, and per-head batched attention shapes (B*H = 64).
void register_all(const bench::CommonFlags& flags) {
    bench::apply_steps(benchmark::RegisterBenchmark("fma_peak", BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime(),
                       flags);
    if (has_bf16_dot())
        bench::apply_steps(
            benchmark::RegisterBenchmark("bf16_peak", BM_bf16_peak)->Unit(benchmark::kMillisecond)->UseRealTime(), flags);
    else
        std::fprintf(stderr, "bench_ops: bf16_peak is skipped: this CPU has no AVX512_BF16\n");
    using Fn = void (*)(benchmark::State&);
    const std::pair<const char*, Fn> cases[] = {{"latte_matmul", BM_latte_matmul}, {"cblas_sgemm", BM_cblas_sgemm}};
    for (const auto& [name, fn] : cases) {
        auto* b = benchmark::RegisterBenchmark(name, fn);
        b->Args({1, 1024, 1024, 1024})->Args({1, 4096, 512, 512})->Args({64, 128, 32, 128})->Args({64, 128, 128, 32});
        b->ArgNames({"batch", "m", "k", "n"})->Unit(benchmark::kMillisecond)->UseRealTime();
        bench::apply_steps(b, flags);
    }
    const std::pair<const char*, int> forms[] = {{"attention_temperature/fused_tensor_scale", 0},
                                                 {"attention_temperature/composed", 1},
                                                 {"attention_temperature/fused_number_scale", 2}};
    for (const auto& [name, form] : forms) {
        auto* b = benchmark::RegisterBenchmark(name, [form = form](benchmark::State& s) { attention_temperature(s, form); });
        bench::apply_steps(b->Unit(benchmark::kMillisecond)->UseRealTime(), flags);
    }
    register_libraries(flags);
    register_attention_tiles(flags);
}

}  // namespace

int main(int argc, char** argv) {
    const bench::CommonFlags flags = bench::take_common_flags("bench_ops", kUsage, argc, argv);
    bench::initialize(flags, argc, argv, print_help);
    register_all(flags);
    return bench::run_benchmarks(flags);
}
