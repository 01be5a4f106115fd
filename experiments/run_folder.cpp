#include "experiments/run_folder.h"

#include <algorithm>
#include <exception>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/distributed.h"
#include "core/error.h"

namespace latte::experiments {
namespace {

// Letters, digits, '.', '+', '-' and '_' are kept: a name that is safe in any shell and file system.
std::string sanitized(const std::string& text) {
    std::string out;
    for (char ch : text) {
        const bool kept = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '.' || ch == '+' || ch == '-' || ch == '_';
        out += kept ? ch : '-';
    }
    return out;
}

}  // namespace

const std::vector<std::string>& every_run_file() {
    // train: loss.csv, loss.svg, checkpoint; demo: loss.csv, loss.svg; compare: results.csv,
    // loss.csv, loss.svg; lm: loss.csv, loss.svg, accuracy.svg, eval.csv, summary.json, checkpoint.
    static const std::vector<std::string> files{"loss.csv",     "loss.svg", "checkpoint.safetensors", "results.csv",
                                                "accuracy.svg", "eval.csv", "summary.json"};
    return files;
}

void check_checkpoint_is_ours(const cli::Args& args, const std::string& checkpoint, const std::string& resume) {
    if (!args.given("checkpoint") || args.on("overwrite") || !std::filesystem::exists(checkpoint)) return;
    if (!resume.empty() && same_path(checkpoint, resume)) return;  // the run it continues
    LATTE_FAIL("latte ", args.command(), ": --checkpoint '", checkpoint, "' already exists, and it is not the "
               "--resume file of this run (it may be another run's checkpoint): give --overwrite to replace it, ",
               "choose another --checkpoint, or --resume ", checkpoint, " to continue it");
}

std::string default_run_name(const cli::Args& args, const std::string& base, const std::set<std::string>& ignored) {
    std::string name = base;
    for (const cli::Flag& f : args.flags()) {
        if (!args.given(f.name) || ignored.count(f.name)) continue;
        std::string value = f.is_switch ? "" : args.str(f.name);
        if (f.path == "file") value = std::filesystem::path(value).stem().string();
        name += '_';
        name += sanitized(f.name + value);
    }
    return name;
}

std::vector<cli::Flag> run_folder_flags(const std::string& default_name_help) {
    return {{"name", "", "the run's folder inside --out (default: " + default_name_help + ")"},
            {"overwrite", "false", "reuse a run folder that already holds a run's files (they are replaced)", true}};
}

RunFolder::RunFolder(std::string path, std::vector<std::filesystem::path> created)
    : path_(std::move(path)), created_(std::move(created)), exceptions_at_start_(std::uncaught_exceptions()) {}

RunFolder::RunFolder(RunFolder&& other) noexcept
    : path_(std::move(other.path_)), created_(std::move(other.created_)), exceptions_at_start_(other.exceptions_at_start_) {
    other.created_.clear();  // only one owner removes the folders
}

RunFolder::~RunFolder() {
    if (std::uncaught_exceptions() <= exceptions_at_start_) return;  // the command ran: keep everything
    for (const std::filesystem::path& folder : created_) {
        std::error_code error;  // best effort: never throw from a destructor
        if (std::filesystem::is_directory(folder, error) && std::filesystem::is_empty(folder, error))
            std::filesystem::remove(folder, error);
    }
}

RunFolder prepare_run_folder(const cli::Args& args, const std::string& default_name,
                             const std::vector<std::string>& files, const std::string& resume,
                             const std::vector<std::string>& inputs) {
    const std::string who = "latte " + args.command();
    const std::string name = args.given("name") ? args.str("name") : default_name;
    LATTE_CHECK(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos, who,
                ": --name must be a folder name (not empty, '.' or '..', no '/'), got '", name, "'");
    const bool in_checkpoint_folder = !resume.empty() && !args.given("out") && !args.given("name");
    std::filesystem::path dir = in_checkpoint_folder ? std::filesystem::path(resume).parent_path()
                                                     : std::filesystem::path(args.str("out")) / name;
    if (dir.empty()) dir = ".";
    // Under mpirun rank 0 makes (and, on a refusal, removes) the folder: ranks that finish first
    // must not remove the folder rank 0 is about to write into.
    const bool owner = distributed::rank() == 0;
    std::vector<std::filesystem::path> created;  // the folders that do not exist yet, deepest first
    std::error_code error;
    for (std::filesystem::path p = dir; owner && !p.empty() && !std::filesystem::exists(p, error); p = p.parent_path()) {
        created.push_back(p);
        if (p == p.parent_path()) break;
    }
    std::filesystem::create_directories(dir, error);
    RunFolder folder(dir.string(), std::move(created));  // from here, a refusal removes what was created
    LATTE_CHECK(!error, who, ": --out: cannot create folder '", dir.string(), "': ", error.message());
    // A resume continues the files of its run: those in the checkpoint's own folder, or in the
    // folder --name names (a checkpoint kept elsewhere with --checkpoint). A folder reached by the
    // default name only may be another run's: the name comes from the flags given, not the run's.
    const std::filesystem::path resume_folder = std::filesystem::path(resume).parent_path();
    const bool resumes_here = !resume.empty() && (args.given("name") ||
                                                  same_path(dir.string(), resume_folder.empty() ? "." : resume_folder.string()));
    // Any command's run files count: a folder that holds only an lm's summary.json holds a run.
    std::vector<std::string> run_files = files;
    for (const std::string& file : every_run_file())
        if (std::find(run_files.begin(), run_files.end(), file) == run_files.end()) run_files.push_back(file);
    if (!resumes_here && !args.on("overwrite"))
        for (const std::string& file : run_files) {
            if (!std::filesystem::exists(dir / file)) continue;
            const std::filesystem::path checkpoint = dir / "checkpoint.safetensors";
            const std::string resume_hint = std::filesystem::exists(checkpoint)
                                                ? ", or --resume " + checkpoint.string() + " to continue it"
                                                : "";
            LATTE_FAIL(who, ": the run folder '", dir.string(), "' already holds a run (", file,
                       "): choose another --name, or give --overwrite to replace it", resume_hint);
        }
    for (const std::string& file : files) check_output_path((dir / file).string(), who + ": --out");
    if (!resumes_here && args.on("overwrite") && owner)
        for (const std::string& file : run_files) {  // whichever command's run it was
            const std::filesystem::path path = dir / file;
            bool read_by_this_run = false;
            for (const std::string& input : inputs)
                read_by_this_run = read_by_this_run || (!input.empty() && same_path(path.string(), input));
            if (!read_by_this_run) std::filesystem::remove(path, error);  // absent is fine
        }
    // What killed writers of this run's files left here (<file>.tmp.<pid>.<n>, the writer gone)
    // goes now, before the run writes anything (core/atomic_file.h).
    if (owner)
        for (const std::string& file : files) remove_stale_temporaries((dir / file).string());
    return folder;
}

}  // namespace latte::experiments
