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

// The temporary files are named `<path>.tmp.<pid>.<n>` (the writer's process id and a counter).
// A writer killed mid-write leaves its temporary file behind; remove_stale_temporaries(path)
// deletes those of `path` whose writer is gone, and every AtomicFile calls it first, so a run that
// writes a file also clears what killed writers of that same file left.
//
// A file counts as stale when its name is exactly `<name of path>.tmp.<digits>.<digits>` in
// path's folder, it is a regular file, and the process <pid> is not running: kill(pid, 0) fails
// with ESRCH, or a process with that id runs but started after the file was last modified (so the
// id was reused and that process cannot be the writer; start times come from /proc). A live
// writer's file is never touched, whatever its age. Errors (an unreadable folder, a file that
// went away) are ignored: the cleanup never makes a write fail. Returns how many were removed.
int remove_stale_temporaries(const std::string& path);

class AtomicFile {
public:
    // Removes the stale temporary files of `path` (remove_stale_temporaries), checks `path`
    // (check_output_path) and creates the temporary file next to it.
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
