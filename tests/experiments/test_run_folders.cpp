// Every run gets its own folder, OUT/NAME: runs never overwrite each other, a folder holding a
// run is refused unless --overwrite, and the default name follows the command line. The
// temporary files killed writers of its files left are removed.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "experiments/cli.h"
#include "experiments/commands.h"
#include "experiments/run_folder.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {


std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("the default run name is the command's base and each flag given, in declaration order", "[run-folder]") {
    const std::vector<cli::Flag> flags{{"model", "mha", ""},       {"D", "64", ""},
                                       {"lr", "0.003", ""},        cli::file_flag("init", ""),
                                       {"out", "runs", ""},        {"fast", "false", "", true},
                                       {"tag", "", ""}};
    const std::set<std::string> ignored{"model", "out"};
    REQUIRE(default_run_name(test::parse_args(flags, {}), "train_mha", ignored) == "train_mha");
    // Order follows the declared flags, not the command line; a file gives its stem; a switch its name.
    REQUIRE(default_run_name(test::parse_args(flags, {"--lr", "1e-3", "--D", "32", "--model", "mla", "--out", "elsewhere"}),
                             "train_mla", ignored) == "train_mla_D32_lr1e-3");
    REQUIRE(default_run_name(test::parse_args(flags, {"--init", "models/w.v2.safetensors", "--fast"}), "t", ignored) ==
            "t_initw.v2_fast");
    // Characters a folder name should not hold become '-'.
    REQUIRE(default_run_name(test::parse_args(flags, {"--tag", "a/b c*"}), "t", ignored) == "t_taga-b-c-");
}

TEST_CASE("a second run with the same folder is refused unless --overwrite; other flags get their own folder",
          "[run-folder][train]") {
    const test::ScratchDir s("run_folders");
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--L", "3",
                                         "--steps", "2", "--out", s.dir + "/new/parent"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    const test::CommandOutcome first = test::run_command(cmd_train, "train", with({}));
    REQUIRE(first.rc == 0);  // the parent folders are created
    const std::string dir = s.dir + "/new/parent/train_mha_D16_H2_d8_batch2_L3_steps2";
    REQUIRE_THAT(first.stdout_text, Catch::Contains("wrote " + dir + "/loss.csv and " + dir + "/loss.svg\n"));
    const std::string before = lines_of(dir + "/loss.csv").at(1);

    const test::CommandOutcome again = test::run_command(cmd_train, "train", with({"--seed", "1"}));
    REQUIRE(again.rc == 0);  // another flag, another folder
    REQUIRE(std::filesystem::exists(dir + "_seed1/loss.csv"));
    REQUIRE(lines_of(dir + "/loss.csv").at(1) == before);

    const test::CommandOutcome refused = test::run_command(cmd_train, "train", with({}));
    REQUIRE(refused.error == "latte train: the run folder '" + dir + "' already holds a run (loss.csv): choose "
                             "another --name, or give --overwrite to replace it, or --resume " + dir +
                             "/checkpoint.safetensors to continue it");
    REQUIRE(refused.stdout_text.empty());
    REQUIRE(test::run_command(cmd_train, "train", with({"--overwrite"})).rc == 0);
    REQUIRE(test::run_command(cmd_train, "train", with({"--name", "mine"})).rc == 0);
    REQUIRE(std::filesystem::exists(s.dir + "/new/parent/mine/checkpoint.safetensors"));
    REQUIRE(test::run_command(cmd_train, "train", with({"--name", "a/b"})).error ==
            "latte train: --name must be a folder name (not empty, '.' or '..', no '/'), got 'a/b'");

    // latte lm and latte compare refuse the same way.
    const std::vector<std::string> lm{"--layers", "1", "--D", "16", "--H", "2", "--vocab", "11", "--L", "7",
                                      "--batch", "2", "--steps", "2", "--eval-every", "0", "--eval-batches", "1",
                                      "--out", s.dir, "--name", "lm"};
    REQUIRE(test::run_command(cmd_lm, "lm", lm).rc == 0);
    REQUIRE_THAT(test::run_command(cmd_lm, "lm", lm).error,
                 Catch::StartsWith("latte lm: the run folder '" + s.dir + "/lm' already holds a run ("));
    const std::vector<std::string> compare{"--D", "16", "--H", "2", "--d", "8", "--G", "1", "--batch", "2",
                                           "--L", "3", "--steps", "2", "--seeds", "1", "--out", s.dir};
    REQUIRE(test::run_command(cmd_compare, "compare", compare).rc == 0);
    REQUIRE_THAT(test::run_command(cmd_compare, "compare", compare).error,
                 Catch::StartsWith("latte compare: the run folder '" + s.dir +
                                   "/compare_D16_H2_d8_G1_batch2_L3_steps2_seeds1' already holds a run (results.csv)"));
}

TEST_CASE("a command refused after its run folder was made leaves no folder behind", "[run-folder][train]") {
    const test::ScratchDir s("run_folder_refused");
    const std::string same = s.dir + "/same.safetensors";
    // --save and --checkpoint naming one file is refused only once the folder exists.
    const test::CommandOutcome refused = test::run_command(
        cmd_train, "train", {"--steps", "2", "--out", s.dir + "/a/b", "--name", "n", "--save", same, "--checkpoint", same});
    REQUIRE_THAT(refused.error, Catch::Contains("are the same file"));
    REQUIRE(!std::filesystem::exists(s.dir + "/a"));  // neither the run folder nor the parents it made
    // A folder that existed before is kept, even when empty.
    std::filesystem::create_directories(s.dir + "/kept/n");
    REQUIRE_THAT(test::run_command(cmd_train, "train",
                                   {"--steps", "2", "--out", s.dir + "/kept", "--name", "n", "--save", same,
                                    "--checkpoint", same})
                     .error,
                 Catch::Contains("are the same file"));
    REQUIRE(std::filesystem::is_directory(s.dir + "/kept/n"));
    // A run that succeeds keeps its folder.
    REQUIRE(test::run_command(cmd_train, "train", {"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--L", "3",
                                                   "--steps", "2", "--out", s.dir + "/ok", "--name", "n"})
                .rc == 0);
    REQUIRE(std::filesystem::exists(s.dir + "/ok/n/loss.csv"));
}

TEST_CASE("a run folder is removed only when its command is refused, never after a run", "[run-folder]") {
    const test::ScratchDir s("run_folder_guard");
    const std::vector<cli::Flag> flags = [] {
        std::vector<cli::Flag> f{{"out", "runs", ""}};
        for (const cli::Flag& g : run_folder_flags("x")) f.push_back(g);
        return f;
    }();
    {
        // A command that ends normally keeps its folder, even empty: under mpirun a rank that
        // finishes first must not remove the folder rank 0 is about to write into.
        const RunFolder folder = prepare_run_folder(test::parse_args(flags, {"--out", s.dir + "/kept", "--name", "n"}), "x", {"a.csv"});
    }
    REQUIRE(std::filesystem::is_directory(s.dir + "/kept/n"));
    try {
        const RunFolder folder = prepare_run_folder(test::parse_args(flags, {"--out", s.dir + "/gone", "--name", "n"}), "x", {"a.csv"});
        throw Error("refused");
    } catch (const Error&) {
    }
    REQUIRE(!std::filesystem::exists(s.dir + "/gone"));
}

TEST_CASE("a resume writes into another run's folder only with --overwrite, which clears the old run",
          "[run-folder][train][resume]") {
    const test::ScratchDir s("run_folder_resume");
    const std::vector<std::string> small{"--D", "16", "--H", "2", "--d", "8", "--batch", "2", "--L", "3", "--out", s.dir};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), small.begin(), small.end());
        return extra;
    };
    REQUIRE(test::run_command(cmd_train, "train", with({"--steps", "4"})).rc == 0);
    const std::string a = s.dir + "/train_mha_D16_H2_d8_batch2_L3_steps4";
    REQUIRE(test::run_command(cmd_train, "train", with({"--steps", "2", "--seed", "1", "--name", "b"})).rc == 0);
    const std::string a_curve = lines_of(a + "/loss.csv").back();
    // Resuming b with --out gives it the default name of its flags given: a's folder. Continuing
    // b there would mix two runs' files: refused.
    const test::CommandOutcome into_a = test::run_command(
        cmd_train, "train", with({"--resume", s.dir + "/b/checkpoint.safetensors", "--steps", "4"}));
    REQUIRE_THAT(into_a.error, Catch::Contains("the run folder '" + a + "' already holds a run"));
    REQUIRE(lines_of(a + "/loss.csv").back() == a_curve);
    // Its own folder is fine.
    REQUIRE(test::run_command(cmd_train, "train", {"--resume", s.dir + "/b/checkpoint.safetensors", "--steps", "4"}).rc == 0);
    // --overwrite replaces a's run whole: its checkpoint does not outlive it beside the new curves.
    REQUIRE(test::run_command(cmd_train, "train",
                              with({"--steps", "4", "--overwrite", "--checkpoint", s.dir + "/other.safetensors"}))
                .rc == 0);
    REQUIRE(!std::filesystem::exists(a + "/checkpoint.safetensors"));
    REQUIRE(std::filesystem::exists(a + "/loss.csv"));
}

TEST_CASE("no --help says the --out folder must exist", "[run-folder][cli]") {
    const std::vector<std::pair<test::Command, std::string>> commands{
        {cmd_train, "train"}, {cmd_lm, "lm"}, {cmd_compare, "compare"}, {cmd_demo, "demo"}};
    for (const auto& [command, name] : commands) {
        const test::CommandOutcome help = test::run_command(command, name, {"--help"});
        CAPTURE(name);
        REQUIRE(help.rc == 0);
        REQUIRE_THAT(help.stdout_text, !Catch::Contains("must exist"));
        REQUIRE_THAT(help.stdout_text, Catch::Contains("--overwrite"));
        REQUIRE_THAT(help.stdout_text, Catch::Contains("created as needed"));
    }
}

TEST_CASE("latte compare prints progress while a seed trains and writes results.csv and loss.svg", "[compare]") {
    const test::ScratchDir s("compare_files");
    const test::CommandOutcome o = test::run_command(
        cmd_compare, "compare", {"--D", "16", "--H", "2", "--d", "8", "--G", "1", "--batch", "2", "--L", "3",
                                 "--steps", "6", "--seeds", "2", "--seed", "4", "--log-every", "3", "--out", s.dir,
                                 "--name", "c"});
    INFO(o.stdout_text << o.error);
    REQUIRE(o.rc == 0);
    // Lines during each training, before the seed's row.
    const size_t progress = o.stdout_text.find("  seed 4 gqa step     3/6  loss ");
    const size_t row = o.stdout_text.find("\n    4 ");
    REQUIRE(progress != std::string::npos);
    REQUIRE(row != std::string::npos);
    REQUIRE(progress < row);
    REQUIRE_THAT(o.stdout_text, Catch::Contains("  seed 5 mla step     6/6  loss "));
    REQUIRE_THAT(o.stdout_text, Catch::Contains("wrote results.csv, loss.csv and loss.svg in " + s.dir + "/c\n"));
    // results.csv: one row per seed, the held-out losses the table printed (to its 4 digits).
    const std::vector<std::string> rows = lines_of(s / "c/results.csv");
    REQUIRE(rows.size() == 3);
    REQUIRE(rows[0] == "seed,gqa_held_out,mla_held_out");
    for (size_t i = 1; i < rows.size(); ++i) {
        std::istringstream in(rows[i]);
        std::string seed, gqa, mla;
        std::getline(in, seed, ',');
        std::getline(in, gqa, ',');
        std::getline(in, mla, ',');
        REQUIRE(seed == std::to_string(3 + i));
        char printed[64];
        std::snprintf(printed, sizeof printed, "%5s %14.3e %14.3e\n", seed.c_str(), std::stod(gqa), std::stod(mla));
        REQUIRE_THAT(o.stdout_text, Catch::Contains(printed));
    }
    REQUIRE(lines_of(s / "c/loss.csv").at(0) == "step,gqa seed 4,mla seed 4,gqa seed 5,mla seed 5");
    REQUIRE(lines_of(s / "c/loss.csv").size() == 7);
    std::ifstream svg(s / "c/loss.svg");
    std::stringstream text;
    text << svg.rdbuf();
    REQUIRE_THAT(text.str(), Catch::Contains(">mla seed 5</text>"));
}

TEST_CASE("a run folder loses the temporary files that killed writers of its files left", "[run-folder][io]") {
    const test::ScratchDir s("run_folder_stale");
    const std::vector<cli::Flag> flags = [] {
        std::vector<cli::Flag> f{{"out", "runs", ""}};
        for (const cli::Flag& g : run_folder_flags("x")) f.push_back(g);
        return f;
    }();
    const pid_t dead = ::fork();  // a writer that is gone: an exited, reaped child
    REQUIRE(dead >= 0);
    if (dead == 0) ::_exit(0);
    REQUIRE(::waitpid(dead, nullptr, 0) == dead);
    const std::string dir = s.dir + "/n", d = std::to_string(dead), me = std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    for (const std::string& name : {"a.csv.tmp." + d + ".0", "a.csv.tmp." + me + ".1", "b.csv.tmp." + d + ".0"})
        std::ofstream(dir + "/" + name) << "partial";
    const RunFolder folder = prepare_run_folder(test::parse_args(flags, {"--out", s.dir, "--name", "n"}), "x", {"a.csv"});
    REQUIRE_FALSE(std::filesystem::exists(dir + "/a.csv.tmp." + d + ".0"));  // a.csv's, its writer gone
    REQUIRE(std::filesystem::exists(dir + "/a.csv.tmp." + me + ".1"));        // a live writer's
    REQUIRE(std::filesystem::exists(dir + "/b.csv.tmp." + d + ".0"));         // not a file of this run
}
