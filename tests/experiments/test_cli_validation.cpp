// Every `latte` command line is checked before the first line of output: each flag's type and
// range, flags that do nothing, sizes that overflow or do not fit in memory, and output paths.
#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
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

using namespace latte;
using namespace latte::experiments;

namespace {

using Command = int (*)(int, char**, int);

struct Outcome {
    std::string error;   // the latte::Error's message, "" when none
    std::string stdout_text;
};

// Runs `latte <name> args...` in-process with stdout captured.
Outcome run(Command command, const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), {"latte", name});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    const std::string capture = test::temp_path("stdout.txt");
    std::fflush(stdout);
    const int saved = ::dup(1);
    const int fd = ::open(capture.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::close(fd);
    Outcome out;
    try {
        command(static_cast<int>(argv.size()), argv.data(), 2);
    } catch (const Error& e) {
        out.error = e.what();
    }
    std::cout.flush();
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::ifstream in(capture);
    out.stdout_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::remove(capture.c_str());
    return out;
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

TEST_CASE("a run too big for the machine fails at once with its memory estimate", "[cli]") {
    REQUIRE_THROWS_WITH(check_memory("latte x", 3.0 * (1 << 30), "weights", 2.0 * (1 << 30)),
                        "latte x: needs about 3.0 GiB of memory (weights), more than the 2.0 GiB available");
    REQUIRE_NOTHROW(check_memory("latte x", 1.0, "weights", 2.0));
    REQUIRE(available_memory_bytes() > 0);
    const std::string number = "[0-9]+\\.[0-9] [GM]iB";
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
    REQUIRE_THAT(o.error, Catch::StartsWith("latte train: --out: cannot create folder '" + file + "/train_mha': "));
    REQUIRE(o.stdout_text.empty());
    // loss.csv in the run folder is a folder: refused before training.
    const std::string runs = test::temp_path("runs_cli");
    std::filesystem::create_directories(runs + "/demo/loss.csv");
    require_refused(cmd_demo, "demo", {"--out", runs, "--steps", "1"},
                    "latte demo: --out: '" + runs + "/demo/loss.csv' exists and is a folder, not a regular file; "
                    "refusing to replace it");
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
