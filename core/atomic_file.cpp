#include "core/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/parse.h"

namespace latte {
namespace {

std::string folder_of(const std::string& path) {
    const std::string parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? "." : parent;
}

// The destination must be absent or a regular file (lstat: a symbolic link is not replaced either).
void check_replaceable(const std::string& path, const std::string& who) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        LATTE_CHECK(errno == ENOENT, who, ": cannot write '", path, "': ", std::strerror(errno));
        return;
    }
    LATTE_CHECK(S_ISREG(st.st_mode), who, ": '", path, "' exists and is ", file_type_name(st.st_mode),
                ", not a regular file; refusing to replace it");
}

std::atomic<unsigned> temp_counter{0};

bool all_digits(const std::string& text) {
    return !text.empty() && text.size() <= 19 && text.find_first_not_of("0123456789") == std::string::npos;
}

// The time since the epoch at which process `pid` started, from /proc/<pid>/stat's 22nd field
// (clock ticks after boot) and /proc/stat's btime; nullopt when either cannot be read.
std::optional<double> process_start_time(pid_t pid) {
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat_file, line)) return std::nullopt;
    const size_t comm_end = line.rfind(')');  // the command name may hold spaces and ')'
    if (comm_end == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(comm_end + 1));
    std::string field;
    for (int i = 3; i <= 22; ++i)  // fields 3.. follow the name; 22 is starttime
        if (!(fields >> field)) return std::nullopt;
    int64_t ticks = 0;
    if (!parse_int(field, ticks)) return std::nullopt;
    std::ifstream boot("/proc/stat");
    std::string key;
    int64_t btime = -1;
    while (boot >> key)
        if (key == "btime") {
            boot >> btime;
            break;
        }
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0) return std::nullopt;
    return double(btime) + double(ticks) / double(hz);
}

// Whether the writer of a temporary file last modified at `modified` (seconds since the epoch)
// may still be process `pid`.
bool writer_may_be_alive(pid_t pid, double modified) {
    if (pid == ::getpid()) return true;
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    // A process with that id runs (or exists under another user: EPERM). It is not the writer if
    // it started after the file's last change; btime is rounded to the second, so allow 2 s.
    const std::optional<double> started = process_start_time(pid);
    return !started || *started <= modified + 2;
}

}  // namespace

int remove_stale_temporaries(const std::string& path) {
    const std::filesystem::path target(path);
    const std::string prefix = target.filename().string() + ".tmp.";
    if (target.filename().empty()) return 0;
    int removed = 0;
    std::error_code error;
    for (std::filesystem::directory_iterator it(folder_of(path), error), end; !error && it != end;
         it.increment(error)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string rest = name.substr(prefix.size());  // "<pid>.<n>"
        const size_t dot = rest.find('.');
        int64_t pid = 0;
        if (dot == std::string::npos || !all_digits(rest.substr(0, dot)) || !all_digits(rest.substr(dot + 1)) ||
            !parse_int(rest.substr(0, dot), pid) || pid <= 0 || pid > std::numeric_limits<pid_t>::max())
            continue;
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        const double modified = double(st.st_mtim.tv_sec) + double(st.st_mtim.tv_nsec) * 1e-9;
        if (writer_may_be_alive(static_cast<pid_t>(pid), modified)) continue;
        if (::unlink(it->path().c_str()) == 0) ++removed;
    }
    return removed;
}

const char* file_type_name(unsigned mode) {
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return S_ISREG(mode) ? "a regular file" : "of an unknown type";
}

void check_output_path(const std::string& path, const std::string& who) {
    LATTE_CHECK(!path.empty(), who, ": the output path is empty");
    const std::string folder = folder_of(path);
    struct stat st {};
    LATTE_CHECK(::stat(folder.c_str(), &st) == 0, who, ": cannot write '", path, "': folder '", folder,
                "' does not exist");
    LATTE_CHECK(S_ISDIR(st.st_mode), who, ": cannot write '", path, "': '", folder, "' is not a folder");
    LATTE_CHECK(::access(folder.c_str(), W_OK | X_OK) == 0, who, ": cannot write '", path, "': folder '", folder,
                "' is not writable");
    check_replaceable(path, who);
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

bool same_path(const std::string& a, const std::string& b) {
    if (a.empty() || b.empty()) return false;
    if (same_file(a, b)) return true;
    std::error_code ea, eb;
    const std::filesystem::path ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
    if (ea || eb) return std::filesystem::absolute(a).lexically_normal() == std::filesystem::absolute(b).lexically_normal();
    return ca == cb;
}

AtomicFile::AtomicFile(const std::string& path, const std::string& who) : path_(path), who_(who) {
    if (!path.empty()) remove_stale_temporaries(path);
    check_output_path(path, who);
    // O_EXCL with a fresh name: never opens someone else's file; mode 0666 & ~umask like any new file.
    for (int attempt = 0; fd_ < 0; ++attempt) {
        temp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_counter++);
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ < 0 && (errno != EEXIST || attempt > 100)) {
            const int error = errno;
            temp_.clear();
            LATTE_FAIL(who, ": cannot create a temporary file next to '", path, "': ", std::strerror(error));
        }
    }
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::fail(const std::string& what, int error) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
    temp_.clear();
    LATTE_FAIL(who_, ": ", what, " '", path_, "' failed: ", std::strerror(error), " (nothing written)");
}

void AtomicFile::write(const void* data, size_t size) {
    LATTE_CHECK(fd_ >= 0 && !committed_, who_, ": write to '", path_, "' after it was closed");
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("writing", n < 0 ? errno : ENOSPC);
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFile::commit() {
    LATTE_CHECK(fd_ >= 0 && !committed_, who_, ": '", path_, "' committed twice");
    // Replacing a file keeps its permissions: a private (0600) file must not become world-readable.
    struct stat old {};
    if (::stat(path_.c_str(), &old) == 0 && S_ISREG(old.st_mode) && ::fchmod(fd_, old.st_mode & 07777) != 0)
        fail("setting the permissions of the temporary file for", errno);
    if (::fsync(fd_) != 0) fail("syncing", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("closing", errno);
    // The destination may have changed since the constructor checked it.
    try {
        check_replaceable(path_, who_);
    } catch (...) {
        ::unlink(temp_.c_str());
        temp_.clear();
        throw;
    }
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("renaming the temporary file onto", errno);
    committed_ = true;
    const std::string folder = folder_of(path_);
    const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    LATTE_CHECK(dir >= 0, who_, ": wrote '", path_, "' but cannot open its folder to sync it: ", std::strerror(errno));
    const int synced = ::fsync(dir), error = errno;
    ::close(dir);
    // EINVAL: the file system cannot sync folders; the file itself is synced.
    LATTE_CHECK(synced == 0 || error == EINVAL, who_, ": wrote '", path_, "' but syncing its folder failed: ",
                std::strerror(error));
}

void write_file_atomically(const std::string& path, const std::string& content, const std::string& who) {
    AtomicFile file(path, who);
    file.write(content);
    file.commit();
}

}  // namespace latte
