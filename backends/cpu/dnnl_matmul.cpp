// oneDNN's matmul through its C API, with every function looked up in libdnnl.so.2 at first use
// (shared_library.h). Primitives are cached per shape: creating one costs far more than a small
// product, and a training step asks for the same few shapes every time.
#include "backends/cpu/dnnl_matmul.h"

#include "core/backend.h"
#include "core/error.h"

#ifdef LATTE_WITH_DNNL
#include <link.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "backends/cpu/parallel.h"
#include "backends/cpu/shared_library.h"
#endif

namespace latte::cpu {

#ifndef LATTE_WITH_DNNL

namespace {
const char* kNotBuilt = "latte was built without oneDNN (install libdnnl-dev and configure with LATTE_DNNL=AUTO or ON)";
}

bool dnnl_available(std::string* why_not) {
    if (why_not) *why_not = kNotBuilt;
    return false;
}
std::string dnnl_version() { return ""; }
void dnnl_matmul(DnnlInput, bool, bool, int64_t m, int64_t n, int64_t k, float, const void*, int64_t, const void*,
                 int64_t, float, float*, int64_t) {
    LATTE_FAIL("matmul (oneDNN) of (", m, "x", k, ") and (", k, "x", n, "): ", kNotBuilt);
}
std::string dnnl_matmul_impl(DnnlInput, bool, bool, int64_t, int64_t, int64_t) { return ""; }

#else

namespace {

struct Dnnl {
    std::string path, error;  // error: why it did not load ("" when it did)
    dnnl_engine_t engine = nullptr;
    const dnnl_version_t* version = nullptr;
    decltype(&dnnl_engine_create) engine_create = nullptr;
    decltype(&dnnl_stream_create) stream_create = nullptr;
    decltype(&dnnl_stream_destroy) stream_destroy = nullptr;
    decltype(&dnnl_stream_wait) stream_wait = nullptr;
    decltype(&dnnl_memory_desc_init_by_strides) md_init = nullptr;
    decltype(&dnnl_memory_desc_get_size) md_size = nullptr;
    decltype(&dnnl_matmul_desc_init) matmul_init = nullptr;
    decltype(&dnnl_primitive_attr_create) attr_create = nullptr;
    decltype(&dnnl_primitive_attr_destroy) attr_destroy = nullptr;
    decltype(&dnnl_primitive_attr_set_output_scales) attr_scales = nullptr;
    decltype(&dnnl_primitive_attr_set_post_ops) attr_post_ops = nullptr;
    decltype(&dnnl_primitive_attr_set_scratchpad_mode) attr_scratchpad = nullptr;
    decltype(&dnnl_post_ops_create) post_ops_create = nullptr;
    decltype(&dnnl_post_ops_destroy) post_ops_destroy = nullptr;
    decltype(&dnnl_post_ops_append_sum) post_ops_sum = nullptr;
    decltype(&dnnl_primitive_desc_create) pd_create = nullptr;
    decltype(&dnnl_primitive_desc_destroy) pd_destroy = nullptr;
    decltype(&dnnl_primitive_desc_query) pd_query = nullptr;
    decltype(&dnnl_primitive_desc_query_md) pd_query_md = nullptr;
    decltype(&dnnl_primitive_create) primitive_create = nullptr;
    decltype(&dnnl_primitive_execute) execute = nullptr;
    decltype(&dnnl_memory_create) memory_create = nullptr;
    decltype(&dnnl_memory_destroy) memory_destroy = nullptr;
    decltype(&::dnnl_version) get_version = nullptr;
    void (*omp_set_num_threads)(int) = nullptr;  // libgomp, which libdnnl.so.2 links
};

Dnnl load_dnnl() {
    Dnnl lib;
    try {
        // libgomp (oneDNN's threads) reads this once, while it loads: after a product its threads
        // would otherwise spin for a while and take the cores from latte's pool and OpenBLAS, as
        // OpenBLAS's own threads did (blas.cpp). A user's setting wins.
        ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
        void* handle = open_library("oneDNN", {"libdnnl.so.2", "libdnnl.so"}, "libdnnl2");
        link_map* map = nullptr;
        lib.path = ::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr ? map->l_name : "libdnnl.so.2";
        const char* who = "oneDNN";
        bind_symbol(handle, who, "dnnl_engine_create", lib.engine_create);
        bind_symbol(handle, who, "dnnl_stream_create", lib.stream_create);
        bind_symbol(handle, who, "dnnl_stream_destroy", lib.stream_destroy);
        bind_symbol(handle, who, "dnnl_stream_wait", lib.stream_wait);
        bind_symbol(handle, who, "dnnl_memory_desc_init_by_strides", lib.md_init);
        bind_symbol(handle, who, "dnnl_memory_desc_get_size", lib.md_size);
        bind_symbol(handle, who, "dnnl_matmul_desc_init", lib.matmul_init);
        bind_symbol(handle, who, "dnnl_primitive_attr_create", lib.attr_create);
        bind_symbol(handle, who, "dnnl_primitive_attr_destroy", lib.attr_destroy);
        bind_symbol(handle, who, "dnnl_primitive_attr_set_output_scales", lib.attr_scales);
        bind_symbol(handle, who, "dnnl_primitive_attr_set_post_ops", lib.attr_post_ops);
        bind_symbol(handle, who, "dnnl_primitive_attr_set_scratchpad_mode", lib.attr_scratchpad);
        bind_symbol(handle, who, "dnnl_post_ops_create", lib.post_ops_create);
        bind_symbol(handle, who, "dnnl_post_ops_destroy", lib.post_ops_destroy);
        bind_symbol(handle, who, "dnnl_post_ops_append_sum", lib.post_ops_sum);
        bind_symbol(handle, who, "dnnl_primitive_desc_create", lib.pd_create);
        bind_symbol(handle, who, "dnnl_primitive_desc_destroy", lib.pd_destroy);
        bind_symbol(handle, who, "dnnl_primitive_desc_query", lib.pd_query);
        bind_symbol(handle, who, "dnnl_primitive_desc_query_md", lib.pd_query_md);
        bind_symbol(handle, who, "dnnl_primitive_create", lib.primitive_create);
        bind_symbol(handle, who, "dnnl_primitive_execute", lib.execute);
        bind_symbol(handle, who, "dnnl_memory_create", lib.memory_create);
        bind_symbol(handle, who, "dnnl_memory_destroy", lib.memory_destroy);
        bind_symbol(handle, who, "dnnl_version", lib.get_version);
        bind_symbol(handle, who, "omp_set_num_threads", lib.omp_set_num_threads, false);
        lib.version = lib.get_version();
        LATTE_CHECK(lib.engine_create(&lib.engine, dnnl_cpu, 0) == dnnl_success, "oneDNN: no CPU engine");
    } catch (const Error& e) {
        lib.error = e.what();
    }
    return lib;  // the handle stays open for the life of the process
}

const Dnnl& dnnl() {
    static const Dnnl lib = load_dnnl();
    return lib;
}

// One created primitive and the memory layouts it was made for.
struct Primitive {
    dnnl_primitive_t primitive = nullptr;
    dnnl_memory_desc_t a{}, b{}, c{}, scratch{};
    size_t scratch_bytes = 0;
    std::string impl;
};

using Key = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

// Past this many shapes the cache starts over (the primitives stay alive: a caller on another
// thread may be running one), so a program that multiplies ever new shapes does not grow without end.
constexpr size_t kMaxCached = 512;

struct Shape {
    DnnlInput input;
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
};

std::string describe(const Shape& s) {
    return latte::detail::concat("(", s.m, "x", s.k, ")", s.ta ? " (transposed)" : "", " and (", s.k, "x", s.n, ")",
                          s.tb ? " (transposed)" : "", s.input == DnnlInput::bf16 ? " in bf16" : " in float32");
}

void check(dnnl_status_t status, const char* what, const Shape& s) {
    LATTE_CHECK(status == dnnl_success, "matmul (oneDNN): ", what, " failed (status ", static_cast<int>(status),
                ") for a product of ", describe(s));
}

Primitive create(const Dnnl& lib, const Shape& s) {
    const dnnl_data_type_t in = s.input == DnnlInput::bf16 ? dnnl_bf16 : dnnl_f32;
    // Transposes are strides: op(A)(i, p) sits at p * lda + i when A is stored transposed.
    const dnnl_dims_t a_dims = {s.m, s.k}, a_strides = {s.ta ? 1 : s.lda, s.ta ? s.lda : 1};
    const dnnl_dims_t b_dims = {s.k, s.n}, b_strides = {s.tb ? 1 : s.ldb, s.tb ? s.ldb : 1};
    const dnnl_dims_t c_dims = {s.m, s.n}, c_strides = {s.ldc, 1};
    Primitive p;
    check(lib.md_init(&p.a, 2, a_dims, in, a_strides), "describing A", s);
    check(lib.md_init(&p.b, 2, b_dims, in, b_strides), "describing B", s);
    check(lib.md_init(&p.c, 2, c_dims, dnnl_f32, c_strides), "describing C", s);
    dnnl_matmul_desc_t desc;
    check(lib.matmul_init(&desc, &p.a, &p.b, nullptr, &p.c), "the matmul description", s);
    dnnl_primitive_attr_t attr = nullptr;
    dnnl_post_ops_t post_ops = nullptr;
    check(lib.attr_create(&attr), "creating attributes", s);
    // The caller's scratchpad: a primitive then runs on several threads at once.
    check(lib.attr_scratchpad(attr, dnnl_scratchpad_mode_user), "the scratchpad mode", s);
    if (s.alpha != 1.0f) check(lib.attr_scales(attr, 1, 0, &s.alpha), "alpha as an output scale", s);
    if (s.beta != 0.0f) {
        check(lib.post_ops_create(&post_ops), "creating post-ops", s);
        check(lib.post_ops_sum(post_ops, s.beta), "beta as a sum post-op", s);
        check(lib.attr_post_ops(attr, post_ops), "setting post-ops", s);
    }
    dnnl_primitive_desc_t pd = nullptr;
    const dnnl_status_t made = lib.pd_create(&pd, &desc, attr, lib.engine, nullptr);
    if (post_ops) lib.post_ops_destroy(post_ops);
    lib.attr_destroy(attr);
    check(made, "choosing an implementation", s);
    const char* impl = nullptr;
    if (lib.pd_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) p.impl = impl;
    if (const dnnl_memory_desc_t* md = lib.pd_query_md(pd, dnnl_query_scratchpad_md, 0)) p.scratch = *md;
    p.scratch_bytes = lib.md_size(&p.scratch);
    const dnnl_status_t built = lib.primitive_create(&p.primitive, pd);
    lib.pd_destroy(pd);
    check(built, "creating the primitive", s);
    return p;
}

const Primitive& cached(const Dnnl& lib, const Shape& s) {
    static std::mutex mutex;
    static std::map<Key, Primitive> cache;
    const Key key{static_cast<int>(s.input), s.ta, s.tb, s.m, s.n, s.k, s.lda, s.ldb, s.ldc, s.alpha, s.beta};
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    if (cache.size() >= kMaxCached) {
        static std::vector<std::map<Key, Primitive>> retired;  // kept alive, see kMaxCached
        retired.push_back(std::move(cache));
        cache.clear();
    }
    return cache.emplace(key, create(lib, s)).first->second;
}

// A stream per calling thread (oneDNN streams are not shared across threads).
struct ThreadStream {
    dnnl_stream_t stream = nullptr;
    ~ThreadStream() {
        if (stream) dnnl().stream_destroy(stream);
    }
};

const Dnnl& ready_dnnl(const Shape& s) {
    const Dnnl& lib = dnnl();
    LATTE_CHECK(lib.error.empty(), "matmul (oneDNN) of ", describe(s), ": ", lib.error);
    // OpenMP's thread count is per calling thread: as many as latte's pool, before a primitive is
    // made (oneDNN sizes its work split then) and run.
    if (lib.omp_set_num_threads) lib.omp_set_num_threads(num_threads());
    return lib;
}

}  // namespace

bool dnnl_available(std::string* why_not) {
    const Dnnl& lib = dnnl();
    if (why_not) *why_not = lib.error;
    return lib.error.empty();
}

std::string dnnl_version() {
    const Dnnl& lib = dnnl();
    if (!lib.error.empty()) return "";
    return latte::detail::concat("oneDNN ", lib.version->major, ".", lib.version->minor, ".", lib.version->patch, " (",
                          lib.path, ")");
}

void dnnl_matmul(DnnlInput input, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    check_blas_gemm("matmul (oneDNN)", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    const Shape s{input, trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta};
    LATTE_CHECK(m > 0 && n > 0 && k > 0, "matmul (oneDNN): empty product of ", describe(s),
                " (the caller handles empty sizes)");
    const Dnnl& lib = ready_dnnl(s);
    const Primitive& p = cached(lib, s);
    thread_local ThreadStream stream;
    thread_local std::vector<char> scratch;
    if (!stream.stream) check(lib.stream_create(&stream.stream, lib.engine, dnnl_stream_default_flags), "a stream", s);
    if (scratch.size() < p.scratch_bytes) scratch.resize(p.scratch_bytes);
    dnnl_memory_t mem[4] = {};
    const dnnl_memory_desc_t* descs[4] = {&p.a, &p.b, &p.c, &p.scratch};
    void* handles[4] = {const_cast<void*>(a), const_cast<void*>(b), c, scratch.data()};  // oneDNN only reads a, b
    const int args = p.scratch_bytes > 0 ? 4 : 3;
    dnnl_status_t status = dnnl_success;
    for (int i = 0; i < args && status == dnnl_success; ++i)
        status = lib.memory_create(&mem[i], descs[i], lib.engine, handles[i]);
    if (status == dnnl_success) {
        const dnnl_exec_arg_t exec[4] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]},
                                         {DNNL_ARG_SCRATCHPAD, mem[3]}};
        status = lib.execute(p.primitive, stream.stream, args, exec);
        if (status == dnnl_success) status = lib.stream_wait(stream.stream);
    }
    for (dnnl_memory_t m_ : mem)
        if (m_) lib.memory_destroy(m_);
    check(status, "running the primitive", s);
}

std::string dnnl_matmul_impl(DnnlInput input, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
    const Shape s{input, trans_a, trans_b, m, n, k, trans_a ? m : k, trans_b ? k : n, n, 1.0f, 0.0f};
    return cached(ready_dnnl(s), s).impl;
}

#endif

}  // namespace latte::cpu
