// The LibTorch-style surface of Tensor: member shorthands, indexing and printing.
#include <sstream>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::indexing;

namespace {

std::string printed(const auto& value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool same_values(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

}  // namespace

TEST_CASE("member shorthands compute what the free functions do", "[core][tensor_api]") {
    const Tensor x = test::uniform64({2, 3, 4}, 7, 0.5, 2.0, false);
    REQUIRE(same_values(x.sum(), sum(x)));
    REQUIRE(same_values(x.sum({1}, true), sum(x, {1}, true)));
    REQUIRE(same_values(x.mean({0, 2}), mean(x, {0, 2})));
    REQUIRE(same_values(x.mean(), mean(x)));
    REQUIRE(same_values(x.max(), max(x)));
    REQUIRE(same_values(x.amax(-1), amax(x, -1)));
    REQUIRE(same_values(x.argmax(1), argmax(x, 1)));
    REQUIRE(same_values(x.exp().log(), log(exp(x))));
    REQUIRE(same_values(x.sqrt().pow(3.0), pow(sqrt(x), 3.0)));
    REQUIRE(same_values(x.abs().relu().tanh().sigmoid(), sigmoid(tanh(relu(abs(x))))));
    REQUIRE(same_values(x.softmax(-1), softmax(x, -1)));
    REQUIRE(same_values(x.transpose(1, 2).contiguous(), contiguous(transpose(x, 1, 2))));
    REQUIRE(same_values(x.permute({2, 0, 1}), permute(x, {2, 0, 1})));
    REQUIRE(same_values(x.reshape({6, 4}).matmul(x.reshape({4, 6})), matmul(reshape(x, {6, 4}), reshape(x, {4, 6}))));
    REQUIRE(x.view({-1}).shape() == Shape{24});
    REQUIRE(x.flatten().shape() == Shape{24});
    REQUIRE(x.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
    REQUIRE(x.unsqueeze(1).squeeze(1).shape() == x.shape());
    REQUIRE(x.narrow(1, 0, 1).squeeze().shape() == Shape{2, 4});
    REQUIRE(x.narrow(0, 0, 1).expand({5, 3, 4}).shape() == Shape{5, 3, 4});
    REQUIRE(x.to(DType::Float32).dtype() == DType::Float32);
    REQUIRE(x.to(Device::cpu()).same_as(to(x, Device::cpu())) == to(x, Device::cpu()).same_as(x));
    REQUIRE(x.sizes() == x.shape());
    Tensor c = x.clone();
    REQUIRE(!c.same_as(x));
    REQUIRE(same_values(c, x));
}

TEST_CASE("item<T> reads one element exactly in the asked type", "[core][tensor_api]") {
    Tensor big = to(full({}, 0.0), DType::Int64);
    static_cast<int64_t*>(big.view().data)[0] = 9007199254740993;  // 2^53 + 1: not a double
    REQUIRE(big.item<int64_t>() == 9007199254740993);
    REQUIRE(full({1, 1}, 2.5).item<float>() == 2.5f);
    REQUIRE_THROWS_WITH(zeros({2}).item<double>(), Catch::Contains("item: tensor of shape [2] has 2 elements"));
}

TEST_CASE("indexing matches Python's x[i, a:b:s, ...] element by element", "[core][tensor_api]") {
    // x[i][j][k] = 100 i + 10 j + k, so every picked element names its own position.
    std::vector<double> values;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 5; ++j)
            for (int k = 0; k < 4; ++k) values.push_back(100 * i + 10 * j + k);
    const Tensor x = from_vector(values, {3, 5, 4}, test::f64());
    REQUIRE(x[1][2][3].item() == 123);
    REQUIRE(x[-1][-1][-1].item() == 243);
    REQUIRE(x.select(2, 1).shape() == Shape{3, 5});
    REQUIRE(x.select(2, 1)[2][4].item() == 241);

    // x[1, 1::2, :]: rows j = 1, 3
    Tensor a = x.index({1, Slice(1, None, 2)});
    REQUIRE(a.shape() == Shape{2, 4});
    for (int64_t j = 0; j < 2; ++j)
        for (int64_t k = 0; k < 4; ++k) REQUIRE(a[j][k].item() == 100 + 10 * (1 + 2 * j) + k);
    // x[..., -2:] and x[:, -1]
    Tensor b = x.index({Ellipsis, Slice(-2, None)});
    REQUIRE(b.shape() == Shape{3, 5, 2});
    REQUIRE(b[2][0][0].item() == 202);
    Tensor c = x.index({Slice(), -1});
    REQUIRE(c.shape() == Shape{3, 4});
    REQUIRE(c[1][3].item() == 143);
    // Out-of-range slice bounds clamp as in Python; an empty slice has length 0.
    REQUIRE(x.slice(1, 3, 100).shape() == Shape{3, 2, 4});
    REQUIRE(x.slice(1, 4, 2).shape() == Shape{3, 0, 4});
    // x[0, ..., 1] keeps the middle dim.
    REQUIRE(x.index({0, Ellipsis, 1}).shape() == Shape{5});
    REQUIRE(x.index({0, Ellipsis, 1})[4].item() == 41);

    REQUIRE_THROWS_WITH(x[3], Catch::Contains("select: index 3 out of range for dim 0 of shape [3,5,4]"));
    REQUIRE_THROWS_WITH(x.index({0, 0, 0, 0}), Catch::Contains("index: 4 indices for a tensor of shape [3,5,4]"));
    REQUIRE_THROWS_WITH(x.index({Ellipsis, Ellipsis}), Catch::Contains("index: at most one Ellipsis"));
    REQUIRE_THROWS_WITH(x.index({Slice(0, 2, 0)}), Catch::Contains("slice: step must be positive"));
}

TEST_CASE("indexing refuses what has no answer instead of reading past the shape", "[core][tensor_api]") {
    const Tensor scalar = full({}, 3.0);
    REQUIRE_THROWS_WITH(scalar[0], Catch::Contains("select: cannot index a 0-d tensor"));
    REQUIRE_THROWS_WITH(scalar.size(0), Catch::Contains("size: a 0-d tensor has no dim 0"));
    const Tensor x = arange(0, 5);
    // Huge steps and lengths: Python's answers, no overflow.
    REQUIRE(x.slice(0, 0, None, INT64_MAX).to_vector() == std::vector<double>{0});
    REQUIRE(x.slice(0, 1, None, INT64_MAX).to_vector() == std::vector<double>{1});
    REQUIRE_THROWS_WITH(x.narrow(0, 1, INT64_MAX), Catch::Contains("narrow: start 1, length"));
    REQUIRE(x.index({static_cast<short>(2)}).item() == 2.0);  // any integer type indexes
    REQUIRE(x.index({2LL}).item() == 2.0);
    // item<int64_t> of a float: exact when it fits, refused when it has no int64 value.
    REQUIRE(full({}, -3.0).item<int64_t>() == -3);
    REQUIRE_THROWS_WITH(full({}, NAN).item<int64_t>(), Catch::Contains("is not in int64's range"));
    REQUIRE_THROWS_WITH(full({}, 1e30).item<int64_t>(), Catch::Contains("is not in int64's range"));
}

TEST_CASE("indexing views carry gradients back to the picked elements", "[core][tensor_api][gradcheck]") {
    const Tensor x = test::randn64({3, 5, 4}, 11);
    const auto picked = [](const std::vector<Tensor>& in) {
        return in[0].index({Slice(None, None, 2), Ellipsis, Slice(1, 3)}).exp().sum({1});
    };
    const GradcheckResult result = gradcheck(picked, {x});
    REQUIRE(result.ok);
    // Elements not picked get exactly zero.
    picked({x}).sum().backward();
    REQUIRE(x.grad()[1].abs().sum().item() == 0.0);
    REQUIRE(x.grad()[0].index({Ellipsis, 0}).abs().sum().item() == 0.0);
    REQUIRE(x.grad()[0].index({Ellipsis, 1}).abs().sum().item() > 0.0);
}

TEST_CASE("operator<< prints shapes, dtypes and devices", "[core][tensor_api]") {
    REQUIRE(printed(Shape{2, 3}) == "[2,3]");
    REQUIRE(printed(zeros({4, 1}).shape()) == "[4,1]");
    REQUIRE(printed(DType::Float64) == "float64");
    REQUIRE(printed(Device::cuda(1)) == "cuda:1");
    REQUIRE(printed(Device::cpu()) == "cpu");
}

TEST_CASE("tensors print aligned, one row per line, summarised past 1000 elements", "[core][tensor_api]") {
    // Fixed notation with 4 decimals, right-aligned to one width.
    const Tensor small = from_vector(std::vector<double>{0.5, -12.25, 3, 4}, {2, 2}, test::f64());
    REQUIRE(printed(small) == "tensor([[  0.5000, -12.2500],\n"
                              "        [  3.0000,   4.0000]], shape=[2,2], dtype=float64, device=cpu)");
    // Scientific when magnitudes span more than 1000x; nan and inf as words.
    const Tensor wide = from_vector(std::vector<double>{1e-6, 2.0, std::nan(""), -INFINITY}, {4}, test::f64());
    REQUIRE(printed(wide) == "tensor([1.0000e-06, 2.0000e+00,        nan,       -inf], shape=[4], dtype=float64, "
                             "device=cpu)");
    // A 3-D tensor: a blank line between matrices.
    REQUIRE(printed(arange(0, 8).reshape({2, 2, 2})) == "tensor([[[0., 1.],\n"
                                                        "         [2., 3.]],\n"
                                                        "\n"
                                                        "        [[4., 5.],\n"
                                                        "         [6., 7.]]], shape=[2,2,2], dtype=float32, device=cpu)");
    // 100 x 100 (10,000 elements): 3 + 3 rows around "...", each with 3 + 3 values around "...".
    const Tensor big = arange(0, 10000).reshape({100, 100});
    const std::vector<std::string> lines = lines_of(printed(big));
    REQUIRE(lines.size() == 7);
    REQUIRE(lines[0] == "tensor([[   0.,    1.,    2.,  ...,   97.,   98.,   99.],");
    REQUIRE(lines[3] == "        ...,");
    REQUIRE(lines[6] == "        [9900., 9901., 9902.,  ..., 9997., 9998., 9999.]], shape=[100,100], dtype=float32, "
                        "device=cpu)");
    // Up to 1000 elements every value shows, wrapped to 80 columns.
    const std::vector<std::string> row = lines_of(printed(arange(0, 40)));
    REQUIRE(row.size() > 1);
    for (const std::string& line : row)
        if (line.find("shape=") == std::string::npos) REQUIRE(line.size() <= 80);
    REQUIRE(printed(arange(0, 40)).find("...") == std::string::npos);
    // Gradient bookkeeping is shown as before.
    REQUIRE(printed(test::randn64({1}, 1)).find("requires_grad=true") != std::string::npos);
    REQUIRE(printed(Tensor()) == "tensor(undefined)");
}
