// Module's public building API: parameters, buffers and submodules registered from outside the
// library, state_dict / load_state_dict in memory, buffers in weight files, train() / eval().
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// A user's module: a linear map with a learned per-feature gain and a fixed mask buffer.
class MaskedLinear : public nn::Module {
public:
    MaskedLinear(int64_t in, int64_t out, uint64_t seed) {
        Generator gen(seed);
        proj = register_module("proj", std::make_shared<nn::Linear>(in, out, true, gen, DType::Float64));
        gain = register_parameter("gain", randn({out}, gen, test::f64()));
        mask = register_buffer("mask", from_vector(std::vector<double>(static_cast<size_t>(out), 1.0), {out},
                                                   test::f64()));
    }
    Tensor forward(const Tensor& x) const { return proj->forward(x) * gain * mask; }

    std::shared_ptr<nn::Linear> proj;
    Tensor gain, mask;
};

std::vector<std::string> names_of(const nn::StateDict& dict) {
    std::vector<std::string> names;
    for (const auto& [name, _] : dict) names.push_back(name);
    return names;
}

}  // namespace

TEST_CASE("a module registers parameters, buffers and submodules from outside the library", "[nn][module_api]") {
    MaskedLinear m(3, 4, 1);
    REQUIRE(names_of(m.named_parameters()) == std::vector<std::string>{"gain", "proj.weight", "proj.bias"});
    REQUIRE(names_of(m.named_buffers()) == std::vector<std::string>{"mask"});
    REQUIRE(names_of(m.state_dict()) == std::vector<std::string>{"gain", "mask", "proj.weight", "proj.bias"});
    REQUIRE(m.parameters().size() == 3);
    REQUIRE(m.num_parameters() == 4 + 12 + 4);  // the buffer is not a parameter
    REQUIRE(m.gain.requires_grad());
    REQUIRE(!m.mask.requires_grad());
    REQUIRE(m.param("gain").same_as(m.gain));
    REQUIRE(m.buffer("mask").same_as(m.mask));

    // It trains through the registered tensors: the buffer gets no gradient.
    m.forward(test::randn64({2, 3}, 5, false)).sum().backward();
    REQUIRE(m.gain.grad().defined());
    REQUIRE(m.proj->weight().grad().defined());
    REQUIRE(!m.mask.grad().defined());

    Generator gen(2);
    REQUIRE_THROWS_WITH(m.register_parameter("gain", zeros({1})), Catch::Contains("'gain' is already registered"));
    REQUIRE_THROWS_WITH(m.register_buffer("proj", zeros({1})), Catch::Contains("'proj' is already registered"));
    REQUIRE_THROWS_WITH(m.register_parameter("a.b", zeros({1})), Catch::Contains("must be non-empty and have no '.'"));
    REQUIRE_THROWS_WITH(m.register_parameter("sum", m.gain * 2.0), Catch::Contains("is the result of an op"));
    REQUIRE_THROWS_WITH(m.register_buffer("b", test::randn64({1}, 1, true)), Catch::Contains("requires grad"));
    REQUIRE_THROWS_WITH(m.register_module("none", std::shared_ptr<nn::Linear>()), Catch::Contains("null module"));
    REQUIRE_THROWS_WITH(m.buffer("gain"), Catch::Contains("no buffer named 'gain'"));
}

TEST_CASE("state_dict shares storage and load_state_dict copies values in", "[nn][module_api]") {
    MaskedLinear a(3, 4, 1), b(3, 4, 2);
    const Tensor x = test::randn64({5, 3}, 9, false);
    REQUIRE(a.forward(x).to_vector() != b.forward(x).to_vector());

    // Detached handles on the same memory: writes to the module show through; clone() snapshots.
    nn::StateDict live = a.state_dict();
    REQUIRE(!live[0].second.requires_grad());
    nn::StateDict snapshot;
    for (const auto& [name, t] : live) snapshot.emplace_back(name, t.clone());
    {
        NoGradGuard no_grad;
        copy_(a.gain, a.gain * 3.0);
    }
    REQUIRE(live[0].second.to_vector() == a.gain.to_vector());
    REQUIRE(snapshot[0].second.to_vector() != a.gain.to_vector());

    b.load_state_dict(a.state_dict());
    REQUIRE(b.forward(x).to_vector() == a.forward(x).to_vector());
    // Parameters keep their identity (an optimizer built on b still steps them).
    REQUIRE(b.param("gain").same_as(b.gain));
    b.load_state_dict(snapshot);
    REQUIRE(b.gain.to_vector() == snapshot[0].second.to_vector());

    // Values convert to the module's dtype.
    nn::StateDict as_float;
    for (const auto& [name, t] : a.state_dict()) as_float.emplace_back(name, t.to(DType::Float32));
    b.load_state_dict(as_float);
    REQUIRE(b.gain.dtype() == DType::Float64);
    LATTE_REQUIRE_CLOSE(b.gain, a.gain, 1e-6, 1e-6);
}

TEST_CASE("load_state_dict is strict by default and names every missing and unexpected key", "[nn][module_api]") {
    MaskedLinear a(3, 4, 1), b(3, 4, 2);
    const std::vector<double> before = b.gain.to_vector();
    nn::StateDict dict = a.state_dict();
    dict.erase(dict.begin() + 1);                      // drop "mask"
    dict.emplace_back("proj.scale", zeros({1}));       // a name b lacks
    REQUIRE_THROWS_WITH(b.load_state_dict(dict),
                        Catch::Contains("missing keys: 'mask'; unexpected keys: 'proj.scale'"));
    REQUIRE(b.gain.to_vector() == before);  // refused: nothing written

    const nn::LoadStateDictResult result = b.load_state_dict(dict, false);
    REQUIRE(result.missing_keys == std::vector<std::string>{"mask"});
    REQUIRE(result.unexpected_keys == std::vector<std::string>{"proj.scale"});
    REQUIRE(b.gain.to_vector() == a.gain.to_vector());

    // A shape mismatch is refused even when not strict, before anything is written.
    MaskedLinear c(3, 4, 3), wide(3, 5, 4);
    const std::vector<double> c_gain = c.gain.to_vector();
    REQUIRE_THROWS_WITH(c.load_state_dict(wide.state_dict(), false),
                        Catch::Contains("load_state_dict: 'gain' has shape [5] in the dict, the module's is [4]"));
    REQUIRE(c.gain.to_vector() == c_gain);
    nn::StateDict twice = a.state_dict();
    twice.push_back(twice.front());
    REQUIRE_THROWS_WITH(c.load_state_dict(twice), Catch::Contains("the dict holds 'gain' twice"));
}

TEST_CASE("buffers convert with the module and travel in weight files", "[nn][module_api]") {
    MaskedLinear a(3, 4, 1), b(3, 4, 2);
    {
        NoGradGuard no_grad;
        copy_(a.mask, from_vector(std::vector<double>{1, 0, 1, 0}, {4}, test::f64()));
    }
    const std::string path = test::temp_path("module_api_buffers.safetensors");
    nn::save(a, path);
    nn::load(b, path);
    std::remove(path.c_str());
    REQUIRE(b.mask.to_vector() == std::vector<double>{1, 0, 1, 0});
    const Tensor x = test::randn64({2, 3}, 4, false);
    REQUIRE(b.forward(x).to_vector() == a.forward(x).to_vector());

    a.to(DType::Float32);
    REQUIRE(a.mask.dtype() == DType::Float32);
    REQUIRE(a.buffer("mask").same_as(a.mask));  // converted in place
}

TEST_CASE("an int64 buffer stays int64 through to(dtype) and through a weights file", "[nn][module_api]") {
    class Counted : public nn::Module {
    public:
        Counted() {
            Generator gen(1);
            weight = register_parameter("weight", randn({3}, gen));
            count = register_buffer("count", latte::to(full({2}, 0.0), DType::Int64));  // Module::to hides latte::to here
        }
        Tensor weight, count;
    };
    Counted a, b;
    {
        NoGradGuard no_grad;
        copy_(a.count, to(from_vector(std::vector<double>{7, 9007199254740993.0}, {2}, test::f64()), DType::Int64));
    }
    a.to(DType::Float64);
    REQUIRE(a.weight.dtype() == DType::Float64);
    REQUIRE(a.count.dtype() == DType::Int64);  // like torch: only floating-point tensors change dtype
    const std::string path = test::temp_path("module_api_int_buffer.safetensors");
    nn::save(a, path);
    nn::load(b, path);  // b is float32: the weight converts, the count loads as int64
    REQUIRE(b.count.to_vector<int64_t>() == a.count.to_vector<int64_t>());
    REQUIRE(b.weight.dtype() == DType::Float32);
    // A float tensor where the module holds int64 (or the reverse) is refused, naming both.
    nn::save_safetensors(path, {{"weight", a.weight.detach()}, {"count", to(a.count, DType::Float64)}});
    REQUIRE_THROWS_WITH(nn::load(b, path), Catch::Contains("tensor 'count' is F64; the module's is int64"));
    std::remove(path.c_str());
}

TEST_CASE("train() and eval() reach every submodule", "[nn][module_api]") {
    MaskedLinear m(3, 4, 1);
    REQUIRE(m.is_training());
    m.eval();
    REQUIRE(!m.is_training());
    REQUIRE(!m.proj->is_training());
    m.train();
    REQUIRE(m.proj->is_training());
}
