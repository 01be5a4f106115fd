// Where training batches come from: fresh random x, y with a teacher's targets every step, or a
// user's file of x, y and target taken in order.
#pragma once
#include <string>

#include "nn/attention.h"

namespace latte::experiments {

struct Batch {
    Tensor x, y, target;
};

// A --data file: x (N, L1, D_1), y (N, L2, D_2), target (N, L1, D_1), on the cpu in the file's dtype.
struct TrainingData {
    std::string path;
    Tensor x, y, target;
    int64_t size() const { return x.size(0); }
};

// A --data file's sizes, from its header.
struct TrainingDataLayout {
    int64_t size = 0, L1 = 0, L2 = 0;
};
// Reads only the header of a --data file and checks it: tensors x, y, target and no others, each
// float32 or float64, shapes as above with D_1 = D1, D_2 = D2 and N >= batch. Errors name the
// file, the tensor and what was expected.
TrainingDataLayout read_training_data_header(const std::string& path, int64_t D1, int64_t D2, int64_t batch);
// The header checked as above, then the data read, and every value checked finite ("latte train:
// --data P: tensor 'x' holds nan at index [0, 0, 5]") and within training_data_bound.
TrainingData load_training_data(const std::string& path, int64_t D1, int64_t D2, int64_t batch);
// The largest |value| a --data file may hold: sqrt(FLT_MAX / (4 n)), n = 4 * batch * L1 * D1, the
// numbers of target the loss sums at once (the evaluation takes 4 batches). A squared error
// (a - b)^2 of values within it is at most 4 bound^2, so n of them stay finite in float32; beyond
// it the loss can overflow to inf even though every value is finite.
double training_data_bound(int64_t batch, int64_t L1, int64_t D1);

// Batch `step`: rows step*batch ... step*batch + batch - 1 of the file, modulo N (in order,
// wrapping around), converted to `dtype` on `device`.
Batch data_batch(const TrainingData& data, int64_t step, int64_t batch, DType dtype, Device device);

// x (batch, L1, D) and y (batch, L2, D) drawn from `gen` (on the host, so every device gets the
// same numbers) and the teacher's outputs as targets. With `shard`, only this rank's rows
// (nn::shard_batch) are kept, before the teacher runs: every rank draws the whole batch, so the
// generator's state is the same on all of them.
Batch teacher_batch(const nn::Attention& teacher, Generator& gen, int64_t batch, int64_t L1, int64_t L2,
                    int64_t D, Device device, bool shard = false);

}  // namespace latte::experiments
