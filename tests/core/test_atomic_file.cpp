// AtomicFile details: a replaced file keeps its permissions; same_path compares paths that may
// not exist yet.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

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
