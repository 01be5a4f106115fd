// Weight files from outside are checked before use: sizes without overflow, data ranges that
// tile the file, no repeated names, regular files only, finite values; outputs are atomic.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/mha.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

// A safetensors file from a header's text and `data_bytes` zero bytes of data.
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes) {
    const std::string path = test::temp_path(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << std::string(data_bytes, '\0');
    return path;
}

std::string entry(const std::string& name, const std::string& shape, uint64_t begin, uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(begin) +
           "," + std::to_string(end) + "]}";
}

// Temporary files left next to `path` by an atomic write.
int temp_files_next_to(const std::string& path) {
    int n = 0;
    const std::string prefix = std::filesystem::path(path).filename().string() + ".tmp.";
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
        n += e.path().filename().string().rfind(prefix, 0) == 0;
    return n;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("checked_mul and checked_numel refuse overflow", "[io]") {
    REQUIRE(checked_mul(3, 4, "x") == 12);
    REQUIRE_THROWS_WITH(checked_mul(std::numeric_limits<int64_t>::max(), 2, "metadata H*D_qk"),
                        "metadata H*D_qk: 9223372036854775807 * 2 overflows int64");
    REQUIRE(checked_numel({2, 0, int64_t(1) << 62}, "x") == 0);
    REQUIRE_THROWS_WITH(checked_numel({2, -1}, "t"), "t: negative size -1 in shape [2,-1]");
}

TEST_CASE("a header whose sizes overflow is refused", "[io]") {
    std::string header = "{";  // built by appends: GCC 12 warns (-Wrestrict) on the chain of + here
    header += entry("x", "[1073741824,1073741824,16]", 0, 0);
    header += ",";
    header += entry("y", "[1073741824,1073741824,16]", 0, 0);
    header += "}";
    const std::string path = write_raw("overflow.safetensors", header, 0);
    REQUIRE_THROWS_WITH(load_safetensors(path), "load_safetensors: " + path +
                                                    ": tensor 'x': shape [1073741824,1073741824,16]: "
                                                    "1152921504606846976 * 16 overflows int64");
    std::remove(path.c_str());
}

TEST_CASE("repeated names, overlaps, gaps and uncovered bytes are refused", "[io]") {
    SECTION("a tensor name twice") {
        const std::string header = "{" + entry("a", "[2]", 0, 8) + "," + entry("a", "[2]", 8, 16) + "}";
        const std::string path = write_raw("dup.safetensors", header, 16);
        REQUIRE_THROWS_WITH(load_safetensors(path), "load_safetensors: " + path + ": invalid JSON header at byte " +
                                                        std::to_string(header.rfind("\"a\"")) + ": duplicate key \"a\"");
        std::remove(path.c_str());
    }
    SECTION("__metadata__ twice") {
        const std::string header = "{\"__metadata__\":{\"module\":\"mha\"}," + entry("a", "[2]", 0, 8) +
                                   ",\"__metadata__\":{\"module\":\"mla\"}}";
        const std::string path = write_raw("dupmeta.safetensors", header, 8);
        REQUIRE_THROWS_WITH(load_safetensors(path), "load_safetensors: " + path + ": invalid JSON header at byte " +
                                                        std::to_string(header.rfind("\"__metadata__\"")) +
                                                        ": duplicate key \"__metadata__\"");
        std::remove(path.c_str());
    }
    SECTION("overlapping ranges") {
        const std::string path = write_raw("overlap.safetensors",
                                           "{" + entry("a", "[2]", 0, 8) + "," + entry("b", "[2]", 4, 12) + "}", 12);
        REQUIRE_THROWS_WITH(load_safetensors(path),
                            "load_safetensors: " + path + ": tensors 'a' [0, 8) and 'b' [4, 12) overlap");
        std::remove(path.c_str());
    }
    SECTION("a gap between ranges") {
        const std::string path = write_raw("gap.safetensors",
                                           "{" + entry("a", "[2]", 0, 8) + "," + entry("b", "[2]", 12, 20) + "}", 20);
        REQUIRE_THROWS_WITH(load_safetensors(path),
                            "load_safetensors: " + path + ": bytes [8, 12) of the data section belong to no tensor");
        std::remove(path.c_str());
    }
    SECTION("bytes after the last tensor") {
        const std::string path = write_raw("tail.safetensors", "{" + entry("a", "[2]", 0, 8) + "}", 12);
        REQUIRE_THROWS_WITH(load_safetensors(path),
                            "load_safetensors: " + path + ": bytes [8, 12) of the data section belong to no tensor");
        std::remove(path.c_str());
    }
}

TEST_CASE("only regular files are read: a folder or a FIFO is refused at once", "[io]") {
    const std::string dir = test::temp_path("a_folder");
    std::filesystem::create_directories(dir);
    REQUIRE_THROWS_WITH(load_safetensors(dir), "load_safetensors: '" + dir + "' is a folder, not a regular file");
    std::filesystem::remove(dir);
    const std::string fifo = test::temp_path("a_fifo");
    std::remove(fifo.c_str());
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE_THROWS_WITH(load_safetensors(fifo), "load_safetensors: '" + fifo + "' is a FIFO, not a regular file");
    std::remove(fifo.c_str());
}

TEST_CASE("isfinite gives 1 for finite values and 0 for nan and inf", "[io][ops]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    for (DType dtype : {DType::Float32, DType::Float64}) {
        Tensor x = from_vector(std::vector<double>{1.0, nan, inf, -inf, 0.0, -3e38}, {2, 3}, TensorOptions{}.with_dtype(dtype));
        Tensor ok = isfinite(x);
        REQUIRE(ok.dtype() == dtype);
        REQUIRE(ok.shape() == Shape{2, 3});
        REQUIRE(ok.to_vector() == std::vector<double>{1, 0, 0, 0, 1, 1});
    }
    Tensor leaf = from_vector(std::vector<double>{1.0}, {1}, test::f64(true));
    REQUIRE_FALSE(isfinite(leaf).requires_grad());
}

TEST_CASE("weights holding nan or inf are refused, naming the tensor and the index", "[io]") {
    Generator gen(1);
    MultiHeadAttention a(8, 8, 2, 2, 4, gen), b(8, 8, 2, 2, 4, gen);
    const std::string path = test::temp_path("nan.safetensors");
    auto params = a.named_parameters();
    std::vector<double> w = params[0].second.to_vector();
    w[3 * 8 + 1] = std::nan("");
    params[0].second = from_vector(w, {8, 8});
    save_safetensors(path, params, a.config());
    const auto before = b.parameters()[0].to_vector();
    REQUIRE_THROWS_WITH(load(b, path), "load: " + path + ": tensor 'W_Q.weight' holds nan at index [3, 1]");
    REQUIRE(b.parameters()[0].to_vector() == before);
    w[3 * 8 + 1] = 0;
    w[7 * 8 + 2] = -std::numeric_limits<double>::infinity();
    params[0].second = from_vector(w, {8, 8});
    save_safetensors(path, params, a.config());
    REQUIRE_THROWS_WITH(load(b, path), "load: " + path + ": tensor 'W_Q.weight' holds -inf at index [7, 2]");
    std::remove(path.c_str());
}

TEST_CASE("a module's file: tensors it lacks and mixed dtypes are refused", "[io]") {
    Generator gen(2);
    MultiHeadAttention a(4, 4, 2, 2, 2, gen);
    const std::string path = test::temp_path("extra.safetensors");
    auto params = a.named_parameters();
    params.emplace_back("extra", zeros({2}));
    save_safetensors(path, params);
    REQUIRE_THROWS_WITH(load(a, path), "load: " + path + " has tensor 'extra' which the module does not have");
    params.pop_back();
    params[1].second = to(params[1].second, DType::Float64);
    save_safetensors(path, params);
    REQUIRE_THROWS_WITH(load(a, path), "load: " + path +
                                           ": tensor 'W_K.weight' is F64 but 'W_Q.weight' is F32 (a module's "
                                           "float tensors share one dtype)");
    std::remove(path.c_str());
}

TEST_CASE("a module's metadata is checked against the file before anything is allocated", "[io]") {
    Generator gen(3);
    MultiHeadAttention a(4, 4, 2, 2, 2, gen);
    const std::string path = test::temp_path("meta.safetensors");
    // A small file whose metadata claims 30000-wide weights: refused from the header alone.
    save_safetensors(path, a.named_parameters(),
                     {{"module", "mha"}, {"D_1", "30000"}, {"D_2", "30000"}, {"D_qk", "30000"}, {"D_v", "30000"}, {"H", "2"}});
    reset_peak_memory(Device::cpu());
    const int64_t live = memory_stats(Device::cpu()).live_bytes;
    REQUIRE_THROWS_WITH(load_attention(path),
                        "load: " + path + ": tensor 'W_Q.weight' has shape [4,4], its metadata implies [60000,30000]");
    REQUIRE(memory_stats(Device::cpu()).peak_bytes - live < (int64_t(1) << 20));
    save_safetensors(path, a.named_parameters(),
                     {{"module", "mha"}, {"D_1", "4"}, {"D_2", "4"}, {"D_qk", "2"}, {"D_v", "2"}, {"H", "9223372036854775807"}});
    REQUIRE_THROWS_WITH(load_attention(path), "load: " + path + ": metadata H*D_qk: 9223372036854775807 * 2 overflows int64");
    save_safetensors(path, a.named_parameters(),
                     {{"module", "mha"}, {"D_1", "4"}, {"D_2", "4"}, {"D_qk", "2"}, {"D_v", "2"}, {"H", "0"}});
    REQUIRE_THROWS_WITH(load_attention(path), "load: " + path + ": metadata H=0 must be positive");
    save(a, path);
    auto b = load_attention(path);
    LATTE_REQUIRE_CLOSE(b->parameters()[0], a.parameters()[0], 0, 0);
    std::remove(path.c_str());
}

TEST_CASE("outputs are atomic: a failed write leaves the old file and no temporary file", "[io]") {
    const std::string path = test::temp_path("atomic.safetensors");
    Tensor big = zeros({4096});
    save_safetensors(path, {{"old", zeros({2})}});
    const std::string old = read_all(path);
    {
        // A full disk, simulated: the file size limit makes write() fail with EFBIG.
        struct sigaction ignore {}, saved {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGXFSZ, &ignore, &saved);
        rlimit limit {}, small {};
        ::getrlimit(RLIMIT_FSIZE, &limit);
        small = limit;
        small.rlim_cur = 1000;
        ::setrlimit(RLIMIT_FSIZE, &small);
        std::string message;
        try {
            save_safetensors(path, {{"big", big}});
        } catch (const Error& e) {
            message = e.what();
        }
        ::setrlimit(RLIMIT_FSIZE, &limit);
        ::sigaction(SIGXFSZ, &saved, nullptr);
        REQUIRE(message == "save_safetensors: writing '" + path + "' failed: File too large (nothing written)");
    }
    REQUIRE(read_all(path) == old);
    REQUIRE(temp_files_next_to(path) == 0);
    std::remove(path.c_str());
}

TEST_CASE("outputs never replace what is not a regular file", "[io]") {
    REQUIRE_THROWS_WITH(save_safetensors("/dev/full", {{"x", zeros({2})}}),
                        "save_safetensors: '/dev/full' exists and is a character device, not a regular file; refusing "
                        "to replace it");
    struct stat st {};
    REQUIRE(::stat("/dev/full", &st) == 0);
    REQUIRE(S_ISCHR(st.st_mode));
    REQUIRE(temp_files_next_to("/dev/full") == 0);

    const std::string fifo = test::temp_path("out_fifo");
    std::remove(fifo.c_str());
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE_THROWS_WITH(write_file_atomically(fifo, "x", "plot"),
                        "plot: '" + fifo + "' exists and is a FIFO, not a regular file; refusing to replace it");
    REQUIRE(::lstat(fifo.c_str(), &st) == 0);
    REQUIRE(S_ISFIFO(st.st_mode));
    std::remove(fifo.c_str());

    const std::string dir = test::temp_path("out_dir");
    std::filesystem::create_directories(dir);
    REQUIRE_THROWS_WITH(write_file_atomically(dir, "x", "plot"),
                        "plot: '" + dir + "' exists and is a folder, not a regular file; refusing to replace it");
    std::filesystem::remove(dir);

    const std::string missing = test::temp_path("no_such_folder/loss.csv");
    REQUIRE_THROWS_WITH(write_file_atomically(missing, "x", "plot"),
                        "plot: cannot write '" + missing + "': folder '" + test::temp_path("no_such_folder") +
                            "' does not exist");

    const std::string file = test::temp_path("atomic.txt");
    write_file_atomically(file, "hello\n", "plot");
    REQUIRE(read_all(file) == "hello\n");
    REQUIRE(temp_files_next_to(file) == 0);
    REQUIRE(same_file(file, file));
    REQUIRE_FALSE(same_file(file, dir));
    std::remove(file.c_str());
}
