// AtomicFile details: a replaced file keeps its permissions; same_path compares paths that may
// not exist yet; the temporary files of killed writers are removed, those of live writers kept.
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/atomic_file.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("replacing a file keeps its permissions; a new file gets the usual ones", "[io]") {
    const std::string path = test::temp_path("private.txt");
    std::remove(path.c_str());
    std::ofstream(path) << "old";
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    write_file_atomically(path, "new", "test");
    REQUIRE(mode_of(path) == 0600);
    REQUIRE(::chmod(path.c_str(), 0640) == 0);
    write_file_atomically(path, "newer", "test");
    REQUIRE(mode_of(path) == 0640);
    std::remove(path.c_str());

    const mode_t mask = ::umask(022);
    write_file_atomically(path, "fresh", "test");
    ::umask(mask);
    REQUIRE(mode_of(path) == 0644);
    std::remove(path.c_str());
}

TEST_CASE("same_path: the same file by canonical path, existing or not", "[io]") {
    const std::string dir = test::temp_path("same_path");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/sub");
    REQUIRE(same_path(dir + "/x.st", dir + "/x.st"));
    REQUIRE(same_path(dir + "/x.st", dir + "/sub/../x.st"));
    REQUIRE(same_path(dir + "/x.st", dir + "/./x.st"));
    REQUIRE_FALSE(same_path(dir + "/x.st", dir + "/y.st"));
    REQUIRE_FALSE(same_path("", ""));
    std::filesystem::create_directory_symlink(dir + "/sub", dir + "/link");
    REQUIRE(same_path(dir + "/sub/a", dir + "/link/a"));  // through a symbolic link, before a exists
    std::ofstream(dir + "/sub/a") << "a";
    std::filesystem::create_hard_link(dir + "/sub/a", dir + "/hard");
    REQUIRE(same_path(dir + "/hard", dir + "/link/a"));  // the same inode
    std::filesystem::remove_all(dir);
}

TEST_CASE("stale temporary files of a destination are removed; a live writer's are kept", "[io]") {
    test::ScratchDir dir("stale_temps");
    const std::string target = dir / "ckpt.st";
    // A dead writer: a child that has exited and been reaped, so kill(pid, 0) fails with ESRCH.
    const pid_t dead = ::fork();
    REQUIRE(dead >= 0);
    if (dead == 0) ::_exit(0);
    REQUIRE(::waitpid(dead, nullptr, 0) == dead);
    // A live writer other than this process: a child waiting for its SIGKILL.
    const pid_t live = ::fork();
    REQUIRE(live >= 0);
    if (live == 0) {
        for (;;) ::pause();
    }
    const std::string d = std::to_string(dead), l = std::to_string(live), me = std::to_string(::getpid());
    const std::vector<std::string> stale = {"ckpt.st.tmp." + d + ".0", "ckpt.st.tmp." + d + ".17",
                                            "ckpt.st.tmp." + l + ".3"};  // the last one, older than `live`
    const std::vector<std::string> kept = {
        "ckpt.st.tmp." + me + ".5",   // this process writes it
        "ckpt.st.tmp." + l + ".4",    // a live writer, since it started
        "ckpt.st.tmp." + d + ".x",    // not the pattern: the counter is not a number
        "ckpt.st.tmp." + d,           // no counter
        "ckpt.st.tmp." + d + ".0.bak",
        "ckpt.st.tmp.-" + d + ".0",
        "other.st.tmp." + d + ".0",   // another destination's
        "xckpt.st.tmp." + d + ".0",
        "ckpt.st"};
    for (const std::string& name : stale) std::ofstream(dir / name) << "partial";
    for (const std::string& name : kept) std::ofstream(dir / name) << "partial";
    std::filesystem::create_directory(dir / ("ckpt.st.tmp." + d + ".9"));  // a folder is not a temporary file
    // Last written an hour before `live` started: its writer was an earlier process with that id.
    const timeval an_hour_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    REQUIRE(::utimes((dir / stale[2]).c_str(), an_hour_ago) == 0);

    REQUIRE(remove_stale_temporaries(target) == 3);
    for (const std::string& name : stale) {
        CAPTURE(name);
        REQUIRE_FALSE(std::filesystem::exists(dir / name));
    }
    for (const std::string& name : kept) {
        CAPTURE(name);
        REQUIRE(std::filesystem::exists(dir / name));
    }
    REQUIRE(std::filesystem::is_directory(dir / ("ckpt.st.tmp." + d + ".9")));
    REQUIRE(remove_stale_temporaries(target) == 0);

    // Every atomic write clears its destination's stale temporary files first.
    std::ofstream(dir / stale[0]) << "partial";
    write_file_atomically(target, "whole", "test");
    REQUIRE_FALSE(std::filesystem::exists(dir / stale[0]));
    REQUIRE(std::filesystem::exists(dir / ("ckpt.st.tmp." + l + ".4")));
    std::ifstream in(target);
    std::string content;
    in >> content;
    REQUIRE(content == "whole");

    // Once the live writer is gone, its file is stale too.
    ::kill(live, SIGKILL);
    REQUIRE(::waitpid(live, nullptr, 0) == live);
    REQUIRE(remove_stale_temporaries(target) == 1);
    REQUIRE_FALSE(std::filesystem::exists(dir / ("ckpt.st.tmp." + l + ".4")));
    REQUIRE(std::filesystem::exists(dir / ("ckpt.st.tmp." + me + ".5")));
    // A missing folder or an empty name is not an error.
    REQUIRE(remove_stale_temporaries(dir / "no/such/folder/file") == 0);
    REQUIRE(remove_stale_temporaries("") == 0);
}
