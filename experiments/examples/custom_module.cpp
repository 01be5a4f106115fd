// A custom module end to end, as docs/custom-module.md walks through it: an attention layer
// whose softmax temperature is learned per head, checked by gradcheck, trained to imitate a
// teacher, then saved and restored through its state_dict.
#include <cmath>
#include <cstdio>
#include <iostream>

#include <latte/latte.h>

using namespace latte;

// Causal self-attention with a learned temperature per head:
//   head h = softmax(t_h * q_h k_h^T / sqrt(d)) v_h,  t_h = exp(log_temperature[h]).
class TemperedAttention : public nn::Module {
public:
    TemperedAttention(int64_t width, int64_t heads, Generator& gen, DType dtype = DType::Float32)
        : heads_(heads), head_dim_(width / heads) {
        LATTE_CHECK(heads > 0 && width % heads == 0, "TemperedAttention: width ", width,
                    " is not a multiple of heads ", heads);
        // Submodules and parameters are registered by name: the names are the state_dict's.
        W_QKV = register_module("W_QKV", std::make_shared<nn::Linear>(width, 3 * width, false, gen, dtype));
        W_O = register_module("W_O", std::make_shared<nn::Linear>(width, width, false, gen, dtype));
        log_temperature = register_parameter("log_temperature", zeros({heads}, TensorOptions{}.with_dtype(dtype)));
    }

    // x (B, L, width) -> (B, L, width)
    Tensor forward(const Tensor& x) const {
        const int64_t width = heads_ * head_dim_;
        const Tensor qkv = W_QKV->forward(x);  // (B, L, 3 * width): q, k and v side by side
        const Tensor q = qkv.narrow(-1, 0, width), k = qkv.narrow(-1, width, width),
                     v = qkv.narrow(-1, 2 * width, width);
        // A tensor scale keeps the fused attention kernel, and log_temperature gets its gradient.
        const Tensor scale = log_temperature.exp() / std::sqrt(static_cast<double>(head_dim_));
        return W_O->forward(nn::grouped_attention(q, k, v, heads_, heads_, /*causal=*/true, scale));
    }

    std::shared_ptr<nn::Linear> W_QKV, W_O;
    Tensor log_temperature;

private:
    int64_t heads_, head_dim_;
};

int main() {
    // 1. Gradient check: a small float64 copy, every parameter against finite differences.
    {
        Generator gen(1);
        const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64);
        TemperedAttention small(8, 2, gen, DType::Float64);
        const Tensor x = randn({2, 5, 8}, gen, f64), target = randn({2, 5, 8}, gen, f64);
        const GradcheckResult check =
            nn::gradcheck_module(small, [&](TemperedAttention& m) { return mse_loss(m.forward(x), target); });
        std::cout << (check.ok ? "gradcheck: ok" : check.message) << "\n";  // the message names itself
        if (!check.ok) return 1;
    }

    // 2. Training: a student imitates a fixed teacher whose heads are sharper (temperature 3).
    const int64_t width = 32, heads = 4, batch = 8, length = 16, steps = 300;
    Generator gen(42);
    TemperedAttention teacher(width, heads, gen), student(width, heads, gen);
    {
        NoGradGuard no_grad;  // writing into a parameter is not part of any graph
        copy_(teacher.log_temperature, full({heads}, std::log(3.0)));
    }
    nn::Adam optimizer(student.parameters(), 3e-3);
    double first = 0, last = 0;
    for (int64_t step = 0; step < steps; ++step) {
        const Tensor x = randn({batch, length, width}, gen);
        Tensor target;
        {
            NoGradGuard no_grad;
            target = teacher.forward(x);
        }
        const Tensor loss = mse_loss(student.forward(x), target);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        (step == 0 ? first : last) = loss.item();
        if (step % 100 == 0 || step == steps - 1) std::printf("step %4lld  loss %.4f\n", (long long)step, loss.item());
    }
    std::cout << "learned temperatures: " << student.log_temperature.exp() << "\n";
    if (!(last < 0.5 * first)) {
        std::printf("the loss did not halve (%.4f -> %.4f)\n", first, last);
        return 1;
    }

    // 3. state_dict: a fresh module loaded with the trained one's tensors computes the same.
    TemperedAttention restored(width, heads, gen);
    restored.load_state_dict(student.state_dict());
    const Tensor x = randn({2, length, width}, gen);
    const double difference = (restored.forward(x) - student.forward(x)).abs().max().item();
    std::printf("restored from the state_dict: max difference %g\n", difference);
    return difference == 0.0 ? 0 : 1;
}
