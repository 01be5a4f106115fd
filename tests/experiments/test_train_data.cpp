// Training from given weights (--init) and data (--data): happy paths and exact errors.
#include <cstdio>
#include <filesystem>

#include "experiments/train_data.h"
#include "nn/serialize.h"
#include "tests/experiments/train_helpers.h"
#include "tests/support/catch_helpers.h"

using namespace latte;
using namespace latte::experiments;

namespace {

// The teacher-mode batches of `steps` steps, as a data file.
void write_teacher_data(const std::string& path, const TrainConfig& c, const nn::Attention& teacher, int64_t steps) {
    Generator gen(c.seed + 1000003);  // the training loop's data stream
    std::vector<Tensor> xs, ys, targets;
    for (int64_t s = 0; s < steps; ++s) {
        const Batch b = teacher_batch(teacher, gen, c.batch, c.L1, c.L2, c.sizes.D, Device::cpu());
        xs.push_back(b.x);
        ys.push_back(b.y);
        targets.push_back(b.target);
    }
    nn::save_safetensors(path, {{"x", cat(xs, 0)}, {"y", cat(ys, 0)}, {"target", cat(targets, 0)}});
}

}  // namespace

TEST_CASE("training on a --data file of the teacher's batches equals training on the teacher", "[train]") {
    const std::string file = test::temp_path("teacher_data.safetensors");
    TrainConfig c = test::small_train_config("mla");
    c.steps = 8;
    auto teacher = make_teacher(c.sizes, c.seed);
    write_teacher_data(file, c, *teacher, c.steps);
    const TrainResult from_teacher = train_student(c, teacher.get());
    TrainConfig on_data = c;
    on_data.data = file;
    on_data.L1 = on_data.L2 = 99;  // the lengths come from the file
    const TrainResult from_data = train_student(on_data, nullptr);
    REQUIRE(test::same_bytes(from_teacher.losses, from_data.losses));
    REQUIRE(from_data.eval_set == "data");
    REQUIRE(std::isfinite(from_data.eval_loss));
    REQUIRE(from_data.target_power > 0);
    // Past the end the batches wrap around: steps 8..15 see the batches of steps 0..7 again.
    on_data.steps = 16;
    const TrainResult wrapped = train_student(on_data, nullptr);
    REQUIRE(test::same_bytes(std::vector<double>(wrapped.losses.begin(), wrapped.losses.begin() + 8), from_data.losses));

    const std::string dir = test::temp_path("data_runs");
    const std::vector<std::string> flags{"--model", "mla", "--D", "16", "--H", "2", "--d", "8", "--r", "8", "--batch",
                                         "4", "--data", file, "--steps", "3", "--out", dir};
    REQUIRE(test::run_train(flags) == 0);
    std::vector<std::string> with_length = flags;
    with_length.insert(with_length.end(), {"--L", "4"});
    REQUIRE_THROWS_WITH(test::run_train(with_length),
                        "latte train: --L has no effect with --data (the lengths come from the data)");
    std::filesystem::remove_all(dir);
    std::remove(file.c_str());
}

TEST_CASE("data batches are consecutive rows along dim 0, wrapping around", "[train]") {
    TrainingData data;
    data.x = reshape(arange(0, 5, 1), {5, 1, 1});
    data.y = data.x;
    data.target = data.x;
    auto rows = [&](int64_t step) { return data_batch(data, step, 2, DType::Float64, Device::cpu()).x.to_vector(); };
    REQUIRE(rows(0) == std::vector<double>{0, 1});
    REQUIRE(rows(1) == std::vector<double>{2, 3});
    REQUIRE(rows(2) == std::vector<double>{4, 0});
    REQUIRE(rows(3) == std::vector<double>{1, 2});
    REQUIRE(rows(7) == std::vector<double>{4, 0});
}

TEST_CASE("a --data file is checked against the model and itself, with exact errors", "[train]") {
    const std::string file = test::temp_path("bad_data.safetensors");
    auto t = [](Shape s) { return zeros(s); };
    auto refused = [&](const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& message) {
        nn::save_safetensors(file, tensors);
        REQUIRE_THROWS_WITH(load_training_data(file, 16, 12, 4), message);
    };
    const std::string where = "latte train: --data " + file;
    refused({{"x", t({6, 3, 16})}, {"y", t({6, 2, 12})}}, where + " has no tensor 'target' (needs x, y, target)");
    refused({{"x", t({6, 3, 16})}, {"y", t({6, 2, 12})}, {"target", t({6, 3, 16})}, {"w", t({1})}},
            where + " has an unexpected tensor 'w' (expected x, y, target)");
    refused({{"x", t({6, 3, 15})}, {"y", t({6, 2, 12})}, {"target", t({6, 3, 16})}},
            where + ": x has shape [6,3,15], expected (N, L1, D_1) with N, L1 > 0 and D_1 = 16");
    refused({{"x", t({6, 16})}, {"y", t({6, 2, 12})}, {"target", t({6, 16})}},
            where + ": x has shape [6,16], expected (N, L1, D_1) with N, L1 > 0 and D_1 = 16");
    refused({{"x", t({6, 3, 16})}, {"y", t({5, 2, 12})}, {"target", t({6, 3, 16})}},
            where + ": y has shape [5,2,12], expected (N, L2, D_2) with N = 6 (as x), L2 > 0 and D_2 = 12");
    refused({{"x", t({6, 3, 16})}, {"y", t({6, 2, 16})}, {"target", t({6, 3, 16})}},
            where + ": y has shape [6,2,16], expected (N, L2, D_2) with N = 6 (as x), L2 > 0 and D_2 = 12");
    refused({{"x", t({6, 3, 16})}, {"y", t({6, 2, 12})}, {"target", t({6, 2, 16})}},
            where + ": target has shape [6,2,16], expected x's shape [6,3,16]");
    refused({{"x", t({3, 3, 16})}, {"y", t({3, 2, 12})}, {"target", t({3, 3, 16})}},
            where + " has 3 samples, fewer than --batch 4");
    const TrainingData ok = [&] {
        nn::save_safetensors(file, {{"x", t({6, 3, 16})}, {"y", t({6, 2, 12})}, {"target", t({6, 3, 16})}});
        return load_training_data(file, 16, 12, 4);
    }();
    REQUIRE(ok.size() == 6);
    std::remove(file.c_str());
}

TEST_CASE("latte train --init starts training from the given weights; mismatched weights name the tensor", "[train]") {
    const std::string file = test::temp_path("init.safetensors");
    TrainConfig c = test::small_train_config("gqa");
    Generator other(77);
    auto start = make_student("gqa", c.sizes, other);
    nn::save(*start, file);
    auto teacher = make_teacher(c.sizes, c.seed);
    TrainConfig from_file = c;
    from_file.init = file;
    from_file.steps = 1;
    from_file.lr = 0;  // the one step leaves the weights where they started
    const TrainResult r = train_student(from_file, teacher.get());
    const auto want = start->named_parameters(), got = r.student->named_parameters();
    for (size_t i = 0; i < want.size(); ++i) {
        INFO(want[i].first);
        REQUIRE(test::same_bytes(want[i].second, got[i].second));
    }

    auto mha = make_student("mha", c.sizes, other);  // W_K is (D, D) here, (G*d, D) in the GQA
    nn::save(*mha, file);
    REQUIRE_THROWS_WITH(train_student(from_file, teacher.get()),
                        "load: " + file + ": tensor 'W_K.weight' has shape [16,16], the module expects [8,16]");
    REQUIRE_THROWS_WITH(test::run_train({"--model", "gqa", "--D", "16", "--H", "2", "--d", "8", "--G", "1", "--init",
                                         file, "--steps", "1", "--out", test::temp_path("init_runs")}),
                        "load: " + file + ": tensor 'W_K.weight' has shape [16,16], the module expects [8,16]");
    std::remove(file.c_str());
    std::filesystem::remove_all(test::temp_path("init_runs"));
}

TEST_CASE("a --data file must be float and finite: checked from the header, then value by value", "[train]") {
    const std::string file = test::temp_path("bad_values.safetensors");
    const std::string where = "latte train: --data " + file;
    nn::save_safetensors(file, {{"x", zeros({6, 3, 16}, TensorOptions{}.with_dtype(DType::Int64))},
                                {"y", zeros({6, 2, 12})},
                                {"target", zeros({6, 3, 16})}});
    REQUIRE_THROWS_WITH(read_training_data_header(file, 16, 12, 4),
                        where + ": tensor 'x' is int64, expected float32 or float64");
    REQUIRE_THROWS_WITH(load_training_data(file, 16, 12, 4), where + ": tensor 'x' is int64, expected float32 or float64");
    std::vector<double> values(6 * 2 * 12, 1.0);
    values[12 + 5] = -INFINITY;
    nn::save_safetensors(file, {{"x", zeros({6, 3, 16}, test::f64())},
                                {"y", from_vector(values, {6, 2, 12})},
                                {"target", zeros({6, 3, 16})}});
    const TrainingDataLayout layout = read_training_data_header(file, 16, 12, 4);  // the header is fine
    REQUIRE(layout.size == 6);
    REQUIRE(layout.L1 == 3);
    REQUIRE(layout.L2 == 2);
    REQUIRE_THROWS_WITH(load_training_data(file, 16, 12, 4), where + ": tensor 'y' holds -inf at index [0, 1, 5]");
    std::remove(file.c_str());
}
