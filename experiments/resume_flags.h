// `--resume FILE` alone continues a run: a checkpoint stores the flags its run was started with
// (config.<flag>), and those stand in for every flag the resuming command line does not give.
#pragma once
#include <map>
#include <set>
#include <string>

#include "experiments/cli.h"

namespace latte::experiments {

// The flags a resumed run may change: its length (--steps, which may only grow past the
// checkpoint's step) and how it reports and checkpoints. Stored, adopted when not given, not compared.
bool free_on_resume(const std::string& flag);

// Whether a given flag value is the stored one: the same text, or numbers that are equal.
bool same_flag_value(const std::string& stored, const std::string& given);

// "<who>: cannot resume from PATH: it was written with --FLAG WAS, this run has --FLAG NOW (...)".
std::string resume_conflict(const std::string& who, const std::string& path, const std::string& flag,
                            const std::string& was, const std::string& now);

// Adopts the checkpoint's stored flags into `args` (cli::Args::adopt), after refusing any flag the
// command line gives with another value than the stored one (numbers compared as numbers, an empty
// value read as "(none)"). Not compared here: the flags free on resume, and `compared_later`, whose
// given form may differ from the stored one (e.g. --warmup auto, stored as a step count): the
// command compares those once resolved.
void adopt_stored_flags(cli::Args& args, const std::string& path, const std::map<std::string, std::string>& stored,
                        const std::set<std::string>& compared_later = {});

}  // namespace latte::experiments
