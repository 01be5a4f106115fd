#include "core/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

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

}  // namespace

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
