// Every `latte` command line is checked before the first line of output: each flag's type and
// range, flags that do nothing, sizes that overflow or do not fit in memory, and output paths.
#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "experiments/cli.h"
#include "experiments/commands.h"
#include "experiments/memory.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

using test::Command;
using Outcome = test::CommandOutcome;

Outcome run(Command command, const std::string& name, std::vector<std::string> args) {
    return test::run_command(command, name, std::move(args));
}

// The command fails with exactly `message` and prints nothing.
void require_refused(Command command, const std::string& name, const std::vector<std::string>& args,
                     const std::string& message) {
    const Outcome o = run(command, name, args);
    CAPTURE(name, args);
    REQUIRE(o.error == message);
    REQUIRE(o.stdout_text.empty());
}

}  // namespace

TEST_CASE("flags: --name=value, repeats, switches with values", "[cli]") {
    require_refused(cmd_train, "train", {"--lr=abc"}, "latte train: --lr expects a finite number, got 'abc'");
    require_refused(cmd_train, "train", {"--lr", "0.1", "--lr=0.2"}, "latte train: --lr is given twice");
    require_refused(cmd_decode, "decode", {"--no-check=1"}, "latte decode: --no-check takes no value, got '--no-check=1'");
    require_refused(cmd_train, "train", {"--steps"}, "latte train: --steps needs a value");
    std::vector<std::string> a{"latte", "x", "--lr=0.25", "--n", "-3", "--s"};
    std::vector<char*> argv;
    for (std::string& s : a) argv.push_back(s.data());
    cli::Args args("x", "", {{"lr", "1", ""}, {"n", "0", ""}, {"s", "false", "", true}, {"m", "7", ""}},
                   static_cast<int>(argv.size()), argv.data(), 2);
    REQUIRE(args.number("lr", true) == 0.25);
    REQUIRE(args.integer("n") == -3);
    REQUIRE(args.on("s"));
    REQUIRE(args.integer("m", 1, 10) == 7);
    REQUIRE_THROWS_WITH(args.integer("n", 0), "latte x: --n must be at least 0, got -3");
}

TEST_CASE("numbers out of range are refused before any output", "[cli]") {
    require_refused(cmd_absorb, "absorb", {"--H", "0"}, "latte absorb: --H must be at least 1, got 0");
    require_refused(cmd_absorb, "absorb", {"--D", "100", "--H", "3"},
                    "latte absorb: --D 100 is not a multiple of --H 3 (d = D/H)");
    require_refused(cmd_absorb, "absorb", {"--repeats", "0"}, "latte absorb: --repeats must be between 1 and 1000000, got 0");
    require_refused(cmd_absorb, "absorb", {"--repeats", "-3"},
                    "latte absorb: --repeats must be between 1 and 1000000, got -3");
    require_refused(cmd_absorb, "absorb", {"--dtype", "f16"}, "latte absorb: --dtype must be f32 or f64, got 'f16'");
    require_refused(cmd_compare, "compare", {"--seeds", "0"}, "latte compare: --seeds must be at least 1, got 0");
    require_refused(cmd_compare, "compare", {"--seeds", "-2"}, "latte compare: --seeds must be at least 1, got -2");
    require_refused(cmd_train, "train", {"--lr", "inf"}, "latte train: --lr expects a finite number, got 'inf'");
    require_refused(cmd_train, "train", {"--lr", "nan"}, "latte train: --lr expects a finite number, got 'nan'");
    require_refused(cmd_train, "train", {"--lr", "-0.1"}, "latte train: --lr must be positive, got -0.1");
    // Finite numbers a double cannot hold as given are refused saying so, not called non-finite.
    for (const std::string tiny : {"1e-310", "4.9e-324", "1e-400", "-1e-310"})
        require_refused(cmd_train, "train", {"--lr", tiny},
                        "latte train: --lr is too small: its magnitude is below 2.2e-308, the smallest normal double, "
                        "got '" + tiny + "'");
    require_refused(cmd_lm, "lm", {"--weight-decay", "1e400"},
                    "latte lm: --weight-decay is too large: its magnitude is above 1.8e308, the largest double, got "
                    "'1e400'");
    require_refused(cmd_train, "train", {"--lr", "0x1p-3"}, "latte train: --lr expects a finite number, got '0x1p-3'");
    require_refused(cmd_train, "train", {"--steps", "0"}, "latte train: --steps must be at least 1, got 0");
    require_refused(cmd_train, "train", {"--seed", "-1"}, "latte train: --seed must be at least 0, got -1");
    require_refused(cmd_train, "train", {"--D", " 64"}, "latte train: --D expects an integer, got ' 64'");
    require_refused(cmd_train, "train", {"--D", "8", "--H", "4611686018427387905", "--d", "4"},
                    "latte train: --H times --d: 4611686018427387905 * 4 overflows int64");
    require_refused(cmd_train, "train", {"--model", "gqa", "--G", "3"},
                    "latte train: --H 4 is not a multiple of --G 3 (GQA shares each K/V head among H/G query heads)");
    require_refused(cmd_train, "train", {"--device", "cuda:99999999999999"},
                    "latte train: --device 'cuda:99999999999999' is not cpu, cuda or cuda:N");
    require_refused(cmd_decode, "decode", {"--model", "xyz"}, "latte decode: --model must be mha, gqa or mla, got 'xyz'");
    require_refused(cmd_decode, "decode", {"--steps", "0"}, "latte decode: --steps must be at least 1, got 0");
    require_refused(cmd_convert, "convert", {"--part10", "--rank", "3"}, "latte convert: --rank has no effect with --part10");
    require_refused(cmd_convert, "convert", {"--in", "a", "--out", "b", "--seed", "1"},
                    "latte convert: --seed has no effect without --part10 (the conversion is deterministic)");
    require_refused(cmd_convert, "convert", {"--in", "a", "--out", "b", "--rank", "-1"},
                    "latte convert: --rank must be at least 0, got -1");
}

TEST_CASE("train --model xyz fails before its banner", "[cli]") {
    require_refused(cmd_train, "train", {"--model", "xyz"}, "latte train: --model must be mha, gqa or mla, got 'xyz'");
}

TEST_CASE("compare: --r is not a flag, and r = 2*G*d must not exceed D", "[cli]") {
    require_refused(cmd_compare, "compare", {"--r", "8"}, "latte compare: unknown flag --r (see latte compare --help)");
    require_refused(cmd_compare, "compare", {"--G", "4"},
                    "latte compare: the equal KV budget r = 2*G*d = 128 exceeds D = 64 (an MLA latent wider than D "
                    "adds nothing: lower --G)");
}

TEST_CASE("compare: --seed picks the first of the --seeds seeds", "[cli]") {
    // It used to be ignored: every run started at seed 0.
    const test::ScratchDir s("compare_seed");
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--G", "1", "--batch", "2",
                                         "--L", "4", "--steps", "3", "--out", s.dir};
    auto rows = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = small;
        args.insert(args.end(), extra.begin(), extra.end());
        const test::CommandOutcome o = test::run_command(cmd_compare, "compare", args);
        REQUIRE(o.rc == 0);
        std::vector<std::string> lines;
        std::istringstream in(o.stdout_text);
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        return lines;
    };
    const auto two = rows({"--seeds", "2"});
    const auto from_one = rows({"--seeds", "1", "--seed", "1"});
    REQUIRE(two.size() == 6);  // header, column names, seeds 0 and 1, mean, the files written
    REQUIRE(from_one.size() == 5);
    REQUIRE(two[3].rfind("    1 ", 0) == 0);
    REQUIRE(from_one[2] == two[3]);  // the same numbers for seed 1
    REQUIRE(from_one[2] != two[2]);
}

TEST_CASE("a run too big for the machine fails at once with its memory estimate", "[cli]") {
    REQUIRE_THROWS_WITH(check_memory("latte x", 3.0 * (1 << 30), "weights", 2.0 * (1 << 30)),
                        "latte x: needs about 3.0 GiB of memory (weights), more than the 2.0 GiB available");
    REQUIRE_NOTHROW(check_memory("latte x", 1.0, "weights", 2.0));
    REQUIRE(available_memory_bytes() > 0);
    const std::string number = "[0-9]+\\.[0-9](e\\+[0-9]+)? [MGTPE]iB";
    const Outcome train = run(cmd_train, "train", {"--D", "16384", "--H", "1", "--d", "16384"});
    REQUIRE_THAT(train.error, Catch::Matches("latte train: needs about " + number +
                                             " of memory \\(weights, gradients, Adam state and one step's activations, "
                                             "roughly\\), more than the " + number + " available"));
    REQUIRE(train.stdout_text.empty());
    const Outcome absorb = run(cmd_absorb, "absorb", {"--batch", "4611686018427387904"});
    REQUIRE_THAT(absorb.error, Catch::Matches("latte absorb: needs about " + number + " of memory .* available"));
    REQUIRE(absorb.stdout_text.empty());
    const Outcome decode = run(cmd_decode, "decode", {"--batch", "4611686018427387904"});
    REQUIRE_THAT(decode.error, Catch::Matches("latte decode: needs about " + number + " of memory .* available"));
    const Outcome steps = run(cmd_train, "train", {"--steps", "4611686018427387904"});
    REQUIRE_THAT(steps.error, Catch::Matches("latte train: needs about .*"));
}

TEST_CASE("output paths are checked before training starts", "[cli]") {
    const std::string missing = test::temp_path("no_such_folder_cli");
    require_refused(cmd_train, "train", {"--save", missing + "/w.safetensors", "--steps", "1"},
                    "latte train: --save: cannot write '" + missing + "/w.safetensors': folder '" + missing +
                        "' does not exist");
    const std::string file = test::temp_path("plain_file");
    std::ofstream(file) << "x";
    const Outcome o = run(cmd_train, "train", {"--out", file, "--steps", "1"});
    REQUIRE_THAT(o.error,
                 Catch::StartsWith("latte train: --out: cannot create folder '" + file + "/train_mha_steps1': "));
    REQUIRE(o.stdout_text.empty());
    // loss.csv in the run folder is a folder: refused before training, even with --overwrite.
    const std::string runs = test::temp_path("runs_cli");
    std::filesystem::remove_all(runs);
    std::filesystem::create_directories(runs + "/demo_steps1/loss.csv");
    require_refused(cmd_demo, "demo", {"--out", runs, "--steps", "1", "--overwrite"},
                    "latte demo: --out: '" + runs + "/demo_steps1/loss.csv' exists and is a folder, not a regular "
                    "file; refusing to replace it");
    std::filesystem::remove_all(runs);
    std::remove(file.c_str());
}

TEST_CASE("forward and convert refuse an output that is one of their inputs", "[cli]") {
    Generator gen(1);
    nn::MultiHeadAttention mha(4, 4, 2, 2, 2, gen);
    const std::string weights = test::temp_path("same_w.safetensors"), inputs = test::temp_path("same_in.safetensors");
    nn::save(mha, weights);
    nn::save_safetensors(inputs, {{"x", zeros({1, 2, 4})}, {"y", zeros({1, 3, 4})}});
    require_refused(cmd_forward, "forward", {"--weights", weights, "--inputs", inputs, "--out", weights},
                    "latte forward: --out '" + weights + "' is the same file as --weights '" + weights + "'");
    require_refused(cmd_forward, "forward", {"--weights", weights, "--inputs", inputs, "--out", inputs},
                    "latte forward: --out '" + inputs + "' is the same file as --inputs '" + inputs + "'");
    require_refused(cmd_forward, "forward", {"--weights", weights, "--inputs", inputs, "--out", "/dev/null"},
                    "latte forward: --out: '/dev/null' exists and is a character device, not a regular file; refusing "
                    "to replace it");
    require_refused(cmd_convert, "convert", {"--in", weights, "--out", weights},
                    "latte convert: --out '" + weights + "' is the same file as --in '" + weights + "'");
    // Inputs holding nan are refused too.
    nn::save_safetensors(inputs, {{"x", full({1, 2, 4}, std::nan(""))}, {"y", zeros({1, 3, 4})}});
    const std::string out = test::temp_path("same_out.safetensors");
    require_refused(cmd_forward, "forward", {"--weights", weights, "--inputs", inputs, "--out", out},
                    "latte forward: " + inputs + ": tensor 'x' holds nan at index [0, 0, 0]");
    REQUIRE_FALSE(std::filesystem::exists(out));
    for (const std::string& f : {weights, inputs}) std::remove(f.c_str());
}

TEST_CASE("decode with --weights refuses size flags", "[cli]") {
    require_refused(cmd_decode, "decode", {"--weights", "w.safetensors", "--D", "8"},
                    "latte decode: --D has no effect with --weights (the file gives the module and its sizes)");
}

TEST_CASE("convert writes nothing when its check is not finite", "[cli]") {
    Generator gen(2);
    nn::GroupedQueryAttention gqa(8, 8, 2, 2, 4, 2, gen);
    {
        NoGradGuard no_grad;
        for (const Tensor& p : gqa.parameters()) copy_(p, full(p.shape(), 1e30));  // float32 scores overflow
    }
    const std::string in = test::temp_path("zero_gqa.safetensors"), out = test::temp_path("zero_mla.safetensors");
    nn::save(gqa, in);
    std::remove(out.c_str());
    const Outcome o = run(cmd_convert, "convert", {"--in", in, "--out", out});
    REQUIRE_THAT(o.error, Catch::Matches("latte convert: the check of the MLA against the GQA gave relative error [^ ]+ "
                                         "in float64 and -?nan in float32; nothing written to " + out));
    REQUIRE(o.stdout_text.empty());
    REQUIRE_FALSE(std::filesystem::exists(out));
    std::remove(in.c_str());
}

TEST_CASE("decode never drops its check line: a nan check is printed and is an error", "[cli]") {
    Generator gen(3);
    nn::MultiHeadLatentAttention mla(8, 2, 4, 4, gen);
    {
        NoGradGuard no_grad;
        for (const Tensor& p : mla.parameters()) copy_(p, full(p.shape(), 1e30));  // float32 overflows to inf
    }
    const std::string weights = test::temp_path("huge_mla.safetensors");
    nn::save(mla, weights);
    const Outcome o = run(cmd_decode, "decode", {"--weights", weights, "--batch", "1", "--steps", "3"});
    REQUIRE_THAT(o.error, Catch::Matches("latte decode: the check against the full causal forward gave relative error "
                                         "-?nan \\(non-finite outputs\\)"));
    REQUIRE_THAT(o.stdout_text, Catch::Contains("check: decoded outputs vs the full causal forward, relative error"));
    std::remove(weights.c_str());
}

TEST_CASE("memory estimates of any size print with a unit", "[cli]") {
    REQUIRE_THROWS_WITH(check_memory("latte x", 3.0 * double(1ull << 40), "w", 1.0),
                        "latte x: needs about 3.0 TiB of memory (w), more than the 0.0 MiB available");
    REQUIRE_THROWS_WITH(check_memory("latte x", 5.0 * double(1ull << 60), "w", 512.0 * (1 << 20)),
                        "latte x: needs about 5.0 EiB of memory (w), more than the 512.0 MiB available");
    REQUIRE_THROWS_WITH(check_memory("latte x", 3e38, "w", 1.0 * (1 << 30)),
                        "latte x: needs about 2.6e+20 EiB of memory (w), more than the 1.0 GiB available");
    const Outcome o = run(cmd_train, "train", {"--D", "4611686018427387904", "--H", "2", "--d", "2305843009213693952"});
    REQUIRE_THAT(o.error, Catch::Matches("latte train: needs about [0-9]\\.[0-9]e\\+[0-9]+ EiB of memory \\(weights, "
                                         "gradients, Adam state and one step's activations, roughly\\), more than the "
                                         "[0-9.]+ [MGTPE]iB available"));
    REQUIRE(o.stdout_text.empty());
}

TEST_CASE("train refuses two of its files being one: outputs, and an output and an input", "[cli]") {
    const std::string dir = test::temp_path("collide");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/sub");
    const std::string x = dir + "/x.safetensors", w = dir + "/w.safetensors";
    std::ofstream(w) << "not read: the collision is found first";
    const std::vector<std::string> small{"--steps", "1", "--out", dir};
    auto refused = [&](std::vector<std::string> args, const std::string& message) {
        args.insert(args.end(), small.begin(), small.end());
        require_refused(cmd_train, "train", args, message);
    };
    refused({"--save", x, "--checkpoint", x},
            "latte train: --save '" + x + "' and --checkpoint '" + x + "' are the same file");
    refused({"--save", x, "--checkpoint", dir + "/sub/../x.safetensors"},
            "latte train: --save '" + x + "' and --checkpoint '" + dir + "/sub/../x.safetensors' are the same file");
    const std::string csv = dir + "/train_mha_steps1/loss.csv", svg = dir + "/train_mha_steps1/loss.svg";
    refused({"--checkpoint", csv},
            "latte train: --checkpoint '" + csv + "' and the run's loss.csv '" + csv + "' are the same file");
    refused({"--save", dir + "/train_mha_steps1/./loss.svg"},
            "latte train: --save '" + dir + "/train_mha_steps1/./loss.svg' and the run's loss.svg '" + svg +
                "' are the same file");
    refused({"--save", w, "--init", w}, "latte train: --save '" + w + "' and --init '" + w + "' are the same file");
    refused({"--init", w, "--checkpoint", dir + "/./w.safetensors"},
            "latte train: --checkpoint '" + dir + "/./w.safetensors' and --init '" + w + "' are the same file");
    // --resume is read first (it gives the flags not given): a real checkpoint, whose 1 step is done.
    const std::string ckpt = dir + "/c.safetensors";
    REQUIRE(run(cmd_train, "train", {"--steps", "1", "--out", dir, "--name", "c", "--checkpoint", ckpt}).rc == 0);
    refused({"--resume", ckpt, "--save", ckpt}, "latte train: --save '" + ckpt + "' and --checkpoint '" + ckpt +
                                                    "' are the same file");  // the checkpoint defaults to --resume
    refused({"--resume", ckpt, "--checkpoint", x, "--save", ckpt},
            "latte train: --save '" + ckpt + "' and --resume '" + ckpt + "' are the same file");
    std::filesystem::create_directories(dir + "/train_mha_steps1");
    std::filesystem::copy_file(ckpt, csv);
    refused({"--resume", csv}, "latte train: --checkpoint '" + csv + "' and the run's loss.csv '" + csv +
                                   "' are the same file");
    std::filesystem::remove_all(dir);
}

namespace {

// A safetensors file whose header says x (n, L1, D), y (n, L2, D), target (n, L1, D) float32; the
// data section is a hole (a sparse file), so huge sizes cost no disk.
void write_sparse_data(const std::string& path, int64_t n, int64_t L1, int64_t L2, int64_t D) {
    const uint64_t bx = uint64_t(n * L1 * D) * 4, by = uint64_t(n * L2 * D) * 4;
    auto entry = [](const char* name, int64_t a, int64_t b, int64_t c, uint64_t begin, uint64_t end) {
        return "\"" + std::string(name) + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(a) + "," +
               std::to_string(b) + "," + std::to_string(c) + "],\"data_offsets\":[" + std::to_string(begin) + "," +
               std::to_string(end) + "]}";
    };
    const std::string header = "{" + entry("x", n, L1, D, 0, bx) + "," + entry("y", n, L2, D, bx, bx + by) + "," +
                               entry("target", n, L1, D, bx + by, 2 * bx + by) + "}";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const uint64_t length = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
    out << header;
    out.close();
    std::filesystem::resize_file(path, 8 + header.size() + 2 * bx + by);
}

}  // namespace

TEST_CASE("train reads and checks --init, --data and --resume before printing anything", "[cli]") {
    const std::string dir = test::temp_path("inputs_first");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/folder");
    const std::string fifo = dir + "/fifo", missing = dir + "/missing.safetensors", folder = dir + "/folder";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--L", "3", "--out", dir};
    auto args = [&](std::vector<std::string> extra) {
        extra.insert(extra.end(), small.begin(), small.end());
        return extra;
    };
    for (const char* flag : {"--init", "--data", "--resume"}) {
        CAPTURE(flag);
        std::vector<std::string> a = args({flag, fifo, "--steps", "2"});
        if (std::string(flag) == "--data") a.erase(a.begin() + 12, a.begin() + 14);  // no --L with --data
        if (std::string(flag) == "--resume") a.insert(a.end(), {"--checkpoint", dir + "/c.ckpt"});
        require_refused(cmd_train, "train", a, "load_safetensors: '" + fifo + "' is a FIFO, not a regular file");
        a[1] = folder;
        require_refused(cmd_train, "train", a, "load_safetensors: '" + folder + "' is a folder, not a regular file");
        a[1] = missing;
        const Outcome o = run(cmd_train, "train", a);
        REQUIRE_THAT(o.error, Catch::StartsWith("load_safetensors: cannot open '" + missing + "'"));
        REQUIRE(o.stdout_text.empty());
    }
    // --init of the wrong shapes.
    Generator gen(4);
    nn::MultiHeadAttention wide(32, 32, 16, 16, 2, gen);
    const std::string init = dir + "/wide.safetensors";
    nn::save(wide, init);
    require_refused(cmd_train, "train", args({"--init", init, "--steps", "2"}),
                    "load: " + init + ": tensor 'W_Q.weight' has shape [32,32], the module expects [16,16]");
    // --init of integers.
    nn::MultiHeadAttention right(16, 16, 8, 8, 2, gen);
    std::vector<std::pair<std::string, Tensor>> ints;
    for (const auto& [name, p] : right.named_parameters()) ints.emplace_back(name, to(p.detach(), DType::Int64));
    nn::save_safetensors(init, ints, right.config());
    require_refused(cmd_train, "train", args({"--init", init, "--steps", "2"}),
                    "load: " + init + ": tensor '" + nn::read_safetensors_header(init).tensors.front().name +
                        "' is I64; the module's is float32");
    // --data without y.
    const std::string data = dir + "/data.safetensors";
    nn::save_safetensors(data, {{"x", zeros({2, 3, 16})}, {"target", zeros({2, 3, 16})}});
    require_refused(cmd_train, "train", {"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--data", data, "--out", dir},
                    "latte train: --data " + data + " has no tensor 'y' (needs x, y, target)");
    // --data with a nan.
    std::vector<double> values(2 * 3 * 16, 0.5);
    values[5] = std::nan("");
    nn::save_safetensors(data, {{"x", from_vector(values, {2, 3, 16})}, {"y", zeros({2, 4, 16})},
                                {"target", zeros({2, 3, 16})}});
    require_refused(cmd_train, "train", {"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--data", data, "--out", dir},
                    "latte train: --data " + data + ": tensor 'x' holds nan at index [0, 0, 5]");
    // The memory estimate uses the data's lengths (a header of 2^30 positions; the data is a hole).
    write_sparse_data(data, 2, int64_t(1) << 30, 4, 16);
    const Outcome big = run(cmd_train, "train", {"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--data", data,
                                                 "--out", dir});
    REQUIRE_THAT(big.error, Catch::Matches("latte train: needs about [0-9.]+ [TPE]iB of memory .*"));
    REQUIRE(big.stdout_text.empty());
    // A resumed run with a changed flag, or past its --steps.
    const std::string ckpt = dir + "/run.ckpt";
    const Outcome made = run(cmd_train, "train", args({"--steps", "2", "--checkpoint", ckpt}));
    REQUIRE(made.error.empty());
    require_refused(cmd_train, "train", args({"--steps", "4", "--lr", "0.01", "--resume", ckpt}),
                    "latte train: cannot resume from " + ckpt + ": it was written with --lr 0.003, this run has --lr "
                    "0.01 (leave --lr out to keep the checkpoint's; only --steps and the output, progress and device "
                    "flags may change)");
    require_refused(cmd_train, "train", args({"--steps", "1", "--resume", ckpt}),
                    "latte train: " + ckpt + " is at step 2, beyond --steps 1");
    const Outcome resumed = run(cmd_train, "train", args({"--steps", "3", "--resume", ckpt}));
    REQUIRE(resumed.error.empty());
    // The banner shows only the sizes an MHA student has (no G, no r).
    REQUIRE_THAT(resumed.stdout_text, Catch::StartsWith("training mha student: D=16 H=2 d=8, batch 2, L 3, 3 steps, in "));
    REQUIRE_THAT(resumed.stdout_text, Catch::Contains(", resuming from " + ckpt + "\n"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("an empty value for a file or folder flag is refused", "[cli]") {
    for (const char* flag : {"save", "init", "data", "resume", "checkpoint"}) {
        require_refused(cmd_train, "train", {std::string("--") + flag, ""},
                        std::string("latte train: --") + flag + " needs a file name, got ''");
        require_refused(cmd_train, "train", {std::string("--") + flag + "="},
                        std::string("latte train: --") + flag + " needs a file name, got ''");
    }
    require_refused(cmd_train, "train", {"--out", ""}, "latte train: --out needs a folder name, got ''");
    require_refused(cmd_demo, "demo", {"--out="}, "latte demo: --out needs a folder name, got ''");
    require_refused(cmd_forward, "forward", {"--weights", ""}, "latte forward: --weights needs a file name, got ''");
    require_refused(cmd_forward, "forward", {"--inputs", ""}, "latte forward: --inputs needs a file name, got ''");
    require_refused(cmd_forward, "forward", {"--out", ""}, "latte forward: --out needs a file name, got ''");
    require_refused(cmd_convert, "convert", {"--in", ""}, "latte convert: --in needs a file name, got ''");
    require_refused(cmd_convert, "convert", {"--out", ""}, "latte convert: --out needs a file name, got ''");
    require_refused(cmd_decode, "decode", {"--weights", ""}, "latte decode: --weights needs a file name, got ''");
}

TEST_CASE("flags that size a model the command does not build are refused", "[cli]") {
    require_refused(cmd_train, "train", {"--model", "mha", "--r", "5"},
                    "latte train: --r has no effect with --model mha (only an MLA student has a latent rank)");
    require_refused(cmd_train, "train", {"--G", "2"},
                    "latte train: --G has no effect with --model mha (only a GQA student has K/V head groups)");
    require_refused(cmd_train, "train", {"--model", "mla", "--G", "1"},
                    "latte train: --G has no effect with --model mla (only a GQA student has K/V head groups)");
    require_refused(cmd_train, "train", {"--model", "gqa", "--r", "8"},
                    "latte train: --r has no effect with --model gqa (only an MLA student has a latent rank)");
    require_refused(cmd_decode, "decode", {"--model", "mha", "--G", "5"},
                    "latte decode: --G has no effect with --model mha (only GQA has K/V head groups)");
    require_refused(cmd_decode, "decode", {"--model", "gqa", "--r", "8"},
                    "latte decode: --r has no effect with --model gqa (only MLA has a latent rank)");
    require_refused(cmd_decode, "decode", {"--G", "2"},
                    "latte decode: --G has no effect with --model mla (only GQA has K/V head groups)");
    require_refused(cmd_absorb, "absorb", {"--r", "2000"},
                    "latte absorb: --r 2000 exceeds --D 1024 (the latent W_DKV x has rank at most D: a wider latent "
                    "adds nothing)");
    require_refused(cmd_train, "train", {"--lr", "0x10"}, "latte train: --lr expects a finite number, got '0x10'");
}

TEST_CASE("convert keeps the permissions of the file it replaces", "[cli]") {
    Generator gen(6);
    nn::GroupedQueryAttention gqa(8, 8, 2, 2, 4, 2, gen);
    const std::string in = test::temp_path("perm_gqa.safetensors"), out = test::temp_path("perm_mla.safetensors");
    nn::save(gqa, in);
    std::ofstream(out) << "old";
    REQUIRE(::chmod(out.c_str(), 0600) == 0);
    const Outcome o = run(cmd_convert, "convert", {"--in", in, "--out", out});
    REQUIRE(o.error.empty());
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    REQUIRE((st.st_mode & 07777) == 0600);
    REQUIRE(nn::read_safetensors_header(out).metadata.at("module") == "mla");
    for (const std::string& f : {in, out}) std::remove(f.c_str());
}
