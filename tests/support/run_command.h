// Runs a `latte` subcommand in-process with stdout captured, so tests can check both what it
// refused and that it printed nothing before refusing.
#pragma once
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "experiments/cli.h"
#include "tests/support/fixtures.h"

namespace latte::test {

using Command = int (*)(int, char**, int);

struct CommandOutcome {
    int rc = -1;             // the command's return value (-1 when it threw)
    std::string error;       // the latte::Error's message, "" when none
    std::string stdout_text;
};

// `latte <name> args...`: argv as the program would see it, flags starting at index 2.
inline CommandOutcome run_command(Command command, const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), {"latte", name});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    const std::string capture = temp_path(name + "_stdout.txt");
    std::cout.flush();
    std::fflush(stdout);
    const int saved = ::dup(1);
    const int fd = ::open(capture.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::close(fd);
    CommandOutcome out;
    try {
        out.rc = command(static_cast<int>(argv.size()), argv.data(), 2);
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

// The flags `words` give command `x`, parsed as `latte x words...` would be.
inline cli::Args parse_args(const std::vector<cli::Flag>& flags, std::vector<std::string> words) {
    words.insert(words.begin(), {"latte", "x"});
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    return cli::Args("x", "", flags, static_cast<int>(argv.size()), argv.data(), 2);
}

}  // namespace latte::test
