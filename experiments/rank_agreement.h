// Data-parallel ranks must run one run: before training, every rank compares what shapes the math
// (its flags, and the contents of the files it reads), so that ranks started with different
// settings are refused at once, naming what differs and each rank's value, instead of training
// silently wrong or waiting out a timeout in a collective that one rank never reaches.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "experiments/cli.h"

namespace latte::experiments {

struct RunItem {
    std::string name, value;  // "--lr" and "0.003"; "--data" and "size 4096, fnv1a 0x..."
};

// "size N, fnv1a64 0x...": what a file holds, whatever its path on this host ("" for ""). Only a
// regular file is read (a FIFO would block): anything else is refused, naming `who`.
std::string file_digest(const std::string& path, const std::string& who);

// Every flag of the command as this run uses it (given or adopted from a checkpoint), except
// `ignored` (outputs and the like). The `files` flags are given by their contents' digest.
std::vector<RunItem> run_items(const cli::Args& args, const std::set<std::string>& ignored,
                               const std::set<std::string>& files);

// With several ranks: throws latte::Error "<who>: the ranks disagree on ITEM: rank 0 has A, rank 1
// has B ..." on every rank when any item differs. One all_gather of the items' hashes, and one
// more for the values of the first differing item.
void check_ranks_agree(const std::vector<RunItem>& items, const std::string& who);
// The same for run_items(args, ignored, files); on one rank it returns at once, reading no file.
void check_ranks_agree(const cli::Args& args, const std::set<std::string>& ignored, const std::set<std::string>& files);

}  // namespace latte::experiments
