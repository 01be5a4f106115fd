// One folder per run, OUT/NAME, so that two runs never overwrite each other's files.
#pragma once
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "experiments/cli.h"

namespace latte::experiments {

// The default --name: `base` (e.g. "train_mla"), then each flag the command line gives that is not
// in `ignored`, in the order the command declares its flags, as _FLAGVALUE (a switch: _FLAG; a file:
// its name without folder or extension). Characters other than letters, digits, '.', '+', '-' and
// '_' become '-'. The same command line always gives the same name.
std::string default_run_name(const cli::Args& args, const std::string& base, const std::set<std::string>& ignored);

// A run's folder. When a command is refused (an exception unwinds past it) the folders that
// prepare_run_folder created and that are still empty are removed, so a refused command line
// leaves nothing behind. Keep it alive for the whole command.
class RunFolder {
public:
    RunFolder(std::string path, std::vector<std::filesystem::path> created);
    RunFolder(RunFolder&& other) noexcept;
    RunFolder(const RunFolder&) = delete;
    RunFolder& operator=(const RunFolder&) = delete;
    RunFolder& operator=(RunFolder&&) = delete;
    ~RunFolder();
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::filesystem::path> created_;  // the deepest first
    int exceptions_at_start_;                     // std::uncaught_exceptions() when made
};

// The run's folder, created now so that a bad --out fails before the run (under mpirun, by rank
// 0 alone; the others name the same folder):
//  - with `resume` (a checkpoint file) and neither --out nor --name given: the checkpoint's folder;
//  - else --out/NAME, NAME being --name or `default_name`.
// A folder already holding one of `files`, or of any other command's run files (every_run_file),
// is another run's, and is refused (suggesting --name, --overwrite and --resume) unless it is the
// folder of the `resume` checkpoint or one --name names for a resume, or --overwrite is given:
// then all those files are deleted now, whichever command wrote them, so that no file of the
// replaced run is left beside the new one's (a file that `inputs` names, such as an --init file,
// is kept). Each of `files`
// in it must be writable (check_output_path). The temporary files that killed writers of `files`
// left in the folder are removed (remove_stale_temporaries).
RunFolder prepare_run_folder(const cli::Args& args, const std::string& default_name,
                             const std::vector<std::string>& files, const std::string& resume = "",
                             const std::vector<std::string>& inputs = {});

// The files any latte command writes into its run folder (train, demo, compare, lm): what
// --overwrite removes, and what makes a folder hold a run.
const std::vector<std::string>& every_run_file();

// Refuses a --checkpoint FILE given on the command line that already exists, unless it is the
// `resume` file (the run it continues) or --overwrite is given: it may be another run's checkpoint,
// which this run would replace. Names the file.
void check_checkpoint_is_ours(const cli::Args& args, const std::string& checkpoint, const std::string& resume);

// The --name and --overwrite flags of a command with run folders.
std::vector<cli::Flag> run_folder_flags(const std::string& default_name_help);

}  // namespace latte::experiments
