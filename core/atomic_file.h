// Output files written atomically: a temporary file in the destination's folder is written,
// fsynced and renamed over the destination, so a reader sees the old file or the whole new one,
// never a cut one; on any error the temporary file is removed and the destination is untouched.
#pragma once
#include <cstddef>
#include <string>

namespace latte {

// Throws latte::Error naming `who` unless `path` can be written: its folder exists and is
// writable, and `path` is absent or a regular file (a device, FIFO, folder or symbolic link is
// never replaced).
void check_output_path(const std::string& path, const std::string& who);
// "a folder", "a FIFO", "a character device", ... for a stat() st_mode that is not a regular file.
const char* file_type_name(unsigned mode);
// True when both paths exist and are the same file (same device and inode, so links count).
bool same_file(const std::string& a, const std::string& b);
// True when the paths name the same file, existing or not: equal after
// std::filesystem::weakly_canonical (symbolic links, "." and ".." resolved), or same_file.
// Empty paths name nothing.
bool same_path(const std::string& a, const std::string& b);

class AtomicFile {
public:
    // Checks `path` (check_output_path) and creates the temporary file next to it.
    AtomicFile(const std::string& path, const std::string& who);
    ~AtomicFile();  // removes the temporary file unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t size);  // all of it, or throws
    void write(const std::string& text) { write(text.data(), text.size()); }
    // fsync, close, rename onto the destination, fsync the folder (so the rename survives a crash).
    // A replaced destination keeps its permission bits (the new file gets them before the rename).
    void commit();
    const std::string& temp_path() const { return temp_; }

private:
    [[noreturn]] void fail(const std::string& what, int error);
    std::string path_, who_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// `content` written to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, const std::string& content, const std::string& who);

}  // namespace latte
