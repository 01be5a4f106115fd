#include "experiments/rank_agreement.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/distributed.h"
#include "core/error.h"

namespace latte::experiments {
namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull, kFnvPrime = 1099511628211ull;

uint64_t fnv1a(const char* data, size_t n, uint64_t h = kFnvOffset) {
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= kFnvPrime;
    }
    return h;
}

Tensor int64_tensor(const std::vector<int64_t>& values) {
    Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, TensorOptions{}.with_dtype(DType::Int64));
    int64_t* out = t.data_ptr<int64_t>();
    for (size_t i = 0; i < values.size(); ++i) out[i] = values[i];
    return t;
}

// Every rank's `text`, indexed by rank (two all_gathers: the lengths, then the padded bytes).
std::vector<std::string> gather_text(const std::string& text) {
    const std::vector<Tensor> lengths = distributed::all_gather(int64_tensor({static_cast<int64_t>(text.size())}));
    int64_t longest = 0;
    for (const Tensor& l : lengths) longest = std::max(longest, l.item<int64_t>());
    std::vector<int64_t> chars(static_cast<size_t>(longest), 0);
    for (size_t i = 0; i < text.size(); ++i) chars[i] = static_cast<unsigned char>(text[i]);
    const std::vector<Tensor> all = distributed::all_gather(int64_tensor(chars));
    std::vector<std::string> out;
    for (size_t r = 0; r < all.size(); ++r) {
        const std::vector<int64_t> c = all[r].to_vector<int64_t>();
        std::string s;
        for (int64_t i = 0; i < lengths[r].item<int64_t>(); ++i) s += static_cast<char>(c[static_cast<size_t>(i)]);
        out.push_back(s);
    }
    return out;
}

}  // namespace

std::string file_digest(const std::string& path, const std::string& who) {
    if (path.empty()) return "";
    std::error_code error;
    LATTE_CHECK(std::filesystem::exists(path, error), who, ": cannot read '", path, "' to compare it across ranks: "
                "no such file");
    LATTE_CHECK(std::filesystem::is_regular_file(path, error), who, ": '", path,
                "' is not a regular file, so the ranks cannot compare it");
    std::ifstream in(path, std::ios::binary);
    LATTE_CHECK(in.good(), who, ": cannot read '", path, "' to compare it across ranks");
    uint64_t h = kFnvOffset, size = 0;
    std::vector<char> buffer(1 << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        const auto got = static_cast<size_t>(in.gcount());
        h = fnv1a(buffer.data(), got, h);
        size += got;
    }
    char text[64];
    std::snprintf(text, sizeof text, "size %llu, fnv1a64 %016llx", static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(h));
    return text;
}

std::vector<RunItem> run_items(const cli::Args& args, const std::set<std::string>& ignored,
                               const std::set<std::string>& files) {
    std::vector<RunItem> items;
    for (const cli::Flag& f : args.flags()) {
        if (ignored.count(f.name)) continue;
        const std::string value = f.is_switch ? (args.on(f.name) ? "on" : "off") : args.str(f.name);
        items.push_back({"--" + f.name, files.count(f.name) ? file_digest(value, "latte " + args.command()) : value});
    }
    return items;
}

void check_ranks_agree(const std::vector<RunItem>& items, const std::string& who) {
    if (distributed::world_size() <= 1) return;
    // The item count first: hashes can only be compared item by item when every rank has as many.
    std::vector<int64_t> hashes{static_cast<int64_t>(items.size())};
    for (const RunItem& item : items) {
        const std::string both = item.name + '\0' + item.value;
        hashes.push_back(static_cast<int64_t>(fnv1a(both.data(), both.size())));
    }
    distributed::check_same_on_all_ranks({hashes[0]}, who + ": the number of run settings");
    const std::vector<Tensor> all = distributed::all_gather(int64_tensor(hashes));
    std::vector<std::vector<int64_t>> by_rank;
    for (const Tensor& t : all) by_rank.push_back(t.to_vector<int64_t>());
    for (size_t i = 1; i < hashes.size(); ++i) {
        bool same = true;
        for (const auto& r : by_rank) same = same && r[i] == by_rank[0][i];
        if (same) continue;
        // Every rank reaches this point for the same i, so the next all_gathers match up.
        const RunItem& item = items[i - 1];
        const std::vector<std::string> values = gather_text(item.value);
        std::string each;
        for (size_t r = 0; r < values.size(); ++r)
            each += (r ? ", rank " : "rank ") + std::to_string(r) + " has " + (values[r].empty() ? "(none)" : values[r]);
        LATTE_FAIL(who, ": the ranks disagree on ", item.name, ": ", each,
                   " (every rank must run the same command on the same files)");
    }
}

void check_ranks_agree(const cli::Args& args, const std::set<std::string>& ignored, const std::set<std::string>& files) {
    if (distributed::world_size() <= 1) return;
    check_ranks_agree(run_items(args, ignored, files), "latte " + args.command());
}

}  // namespace latte::experiments
