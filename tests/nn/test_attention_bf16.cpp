// The fused attention under autocast(bf16) (issue 22): its six tile products (S = Q K^T, O = P V;
// dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q) multiply bf16-rounded inputs with float32
// sums, while the softmax, the scaling, the running max and sum and every output stay float32.
// Checked against a float64 reference written from the same math with each product's inputs
// rounded to bf16 at the same points (the kernel's scaled Q, its unnormalised forward
// probabilities, the backward's P and dS), for causal and full masks and GQA heads; the backward
// keeps the forward's mode; outside the guard the float32 path is unchanged; a CPU without bf16
// refuses, naming the op.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/bf16_gemm.h"
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/factory.h"
#include "core/random.h"
#include "nn/flash_attention.h"
#include "ops/ops.h"
#include "tests/support/bf16_reference.h"

using namespace latte;
using autocast::Precision;

namespace {

double bf16(float x) { return test::round_bf16(x); }

bool have_bf16() { return test::cpu_runs_bf16("fused attention under autocast(bf16)"); }

struct Case {
    int64_t B, H, G, L1, L2, d, dv;
    bool causal;
};

struct Results {
    std::vector<double> out, dq, dk, dv;
};

// The float64 reference. With round, every product's inputs are rounded to bf16 where the kernel
// rounds them; without, it is plain float64 attention (Q still scaled in float32, as the kernel's).
Results reference(const Case& c, double scale, const std::vector<float>& q, const std::vector<float>& k,
                  const std::vector<float>& v, const std::vector<float>& g, bool round) {
    auto r = [round](float x) { return round ? bf16(x) : static_cast<double>(x); };
    Results res;
    res.out.assign(static_cast<size_t>(c.B * c.H * c.L1 * c.dv), 0.0);
    res.dq.assign(static_cast<size_t>(c.B * c.H * c.L1 * c.d), 0.0);
    res.dk.assign(static_cast<size_t>(c.B * c.G * c.L2 * c.d), 0.0);
    res.dv.assign(static_cast<size_t>(c.B * c.G * c.L2 * c.dv), 0.0);
    const float fscale = static_cast<float>(scale);
    for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.H; ++h) {
            const int64_t gh = h % c.G;
            auto qi = [&](int64_t i, int64_t x) { return q[size_t(((b * c.H + h) * c.L1 + i) * c.d + x)]; };
            auto kj = [&](int64_t j, int64_t x) { return k[size_t(((b * c.G + gh) * c.L2 + j) * c.d + x)]; };
            auto vj = [&](int64_t j, int64_t x) { return v[size_t(((b * c.G + gh) * c.L2 + j) * c.dv + x)]; };
            auto gi = [&](int64_t i, int64_t x) { return g[size_t(((b * c.H + h) * c.L1 + i) * c.dv + x)]; };
            for (int64_t i = 0; i < c.L1; ++i) {
                const int64_t seen = c.causal ? std::clamp<int64_t>(i + c.L2 - c.L1 + 1, 0, c.L2) : c.L2;
                std::vector<double> qs(static_cast<size_t>(c.d)), s(static_cast<size_t>(seen));
                for (int64_t x = 0; x < c.d; ++x) qs[size_t(x)] = r(qi(i, x) * fscale);
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t j = 0; j < seen; ++j) {
                    double dot = 0;
                    for (int64_t x = 0; x < c.d; ++x) dot += qs[size_t(x)] * r(kj(j, x));
                    s[size_t(j)] = dot;
                    m = std::max(m, dot);
                }
                double sum = 0;
                for (int64_t j = 0; j < seen; ++j) sum += std::exp(s[size_t(j)] - m);
                const double lse = m + std::log(sum);
                double* o = &res.out[size_t(((b * c.H + h) * c.L1 + i) * c.dv)];
                for (int64_t j = 0; j < seen; ++j) {
                    const double e = r(static_cast<float>(std::exp(s[size_t(j)] - m)));  // unnormalised, as the kernel
                    for (int64_t x = 0; x < c.dv; ++x) o[x] += e * r(vj(j, x));
                }
                for (int64_t x = 0; x < c.dv; ++x) o[x] /= sum;
                double delta = 0;  // rowsum(dO * O), float32 inputs in the kernel
                for (int64_t x = 0; x < c.dv; ++x) delta += gi(i, x) * o[x];
                double* dq = &res.dq[size_t(((b * c.H + h) * c.L1 + i) * c.d)];
                for (int64_t j = 0; j < seen; ++j) {
                    const double p = std::exp(s[size_t(j)] - lse);
                    double dp = 0;
                    for (int64_t x = 0; x < c.dv; ++x) dp += r(gi(i, x)) * r(vj(j, x));
                    const double ds = r(static_cast<float>(p * (dp - delta)));
                    const double pr = r(static_cast<float>(p));
                    double* dv = &res.dv[size_t(((b * c.G + gh) * c.L2 + j) * c.dv)];
                    for (int64_t x = 0; x < c.dv; ++x) dv[x] += pr * r(gi(i, x));
                    double* dk = &res.dk[size_t(((b * c.G + gh) * c.L2 + j) * c.d)];
                    for (int64_t x = 0; x < c.d; ++x) {
                        dq[x] += ds * r(kj(j, x));
                        dk[x] += ds * qs[size_t(x)];
                    }
                }
                for (int64_t x = 0; x < c.d; ++x) dq[x] *= scale;
            }
        }
    return res;
}

// ||got - want|| / ||want||.
double rel(const std::vector<double>& got, const std::vector<double>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

struct Inputs {
    Tensor q, k, v, g;
};

Inputs make_inputs(const Case& c, uint64_t seed) {
    Generator gen(seed);
    const TensorOptions opts = TensorOptions{}.with_requires_grad(true);
    return {randn({c.B, c.H, c.L1, c.d}, gen, opts), randn({c.B, c.G, c.L2, c.d}, gen, opts),
            randn({c.B, c.G, c.L2, c.dv}, gen, opts), randn({c.B, c.H, c.L1, c.dv}, gen)};
}

// Forward and backward of the fused op, forward under `fwd` and backward under `bwd`.
Results run(const Inputs& in, double scale, bool causal, Precision fwd, Precision bwd) {
    for (Tensor t : {in.q, in.k, in.v}) t.zero_grad();
    Tensor out;
    {
        autocast::Guard guard(fwd);
        out = nn::flash_attention(in.q, in.k, in.v, scale, causal);
    }
    {
        autocast::Guard guard(bwd);
        out.backward(in.g);
    }
    return {out.to_vector<double>(), in.q.grad().to_vector<double>(), in.k.grad().to_vector<double>(),
            in.v.grad().to_vector<double>()};
}

const char* const kNames[] = {"out", "dq", "dk", "dv"};

std::vector<double>& part(Results& r, int i) { return i == 0 ? r.out : i == 1 ? r.dq : i == 2 ? r.dk : r.dv; }

}  // namespace

TEST_CASE("fused attention under autocast(bf16) equals the float64 math of bf16-rounded products",
          "[bf16][autocast][attention]") {
    if (!have_bf16()) return;
    // Query tiles of 128 rows: L1 130 runs two; d and dv odd, and GQA heads sharing K/V.
    const Case cases[] = {
        {2, 4, 2, 130, 130, 32, 16, true}, {2, 4, 2, 130, 130, 32, 16, false}, {1, 2, 1, 5, 67, 17, 33, true},
        {1, 3, 3, 64, 200, 64, 64, false}, {1, 2, 1, 40, 40, 128, 64, true},
    };
    for (const Case& c : cases) {
        CAPTURE(c.B, c.H, c.G, c.L1, c.L2, c.d, c.dv, c.causal);
        const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
        const Inputs in = make_inputs(c, static_cast<uint64_t>(c.L1 * 31 + c.L2 + c.causal));
        const auto qv = in.q.to_vector<float>(), kv = in.k.to_vector<float>(), vv = in.v.to_vector<float>(),
                   gv = in.g.to_vector<float>();
        Results want_bf16 = reference(c, scale, qv, kv, vv, gv, true);
        Results want_f64 = reference(c, scale, qv, kv, vv, gv, false);
        Results got = run(in, scale, c.causal, Precision::BFloat16, Precision::BFloat16);
        Results f32 = run(in, scale, c.causal, Precision::Float32, Precision::Float32);
        for (int i = 0; i < 4; ++i) {
            CAPTURE(kNames[i]);
            const double to_bf16_ref = rel(part(got, i), part(want_bf16, i));
            const double bf16_to_exact = rel(part(got, i), part(want_f64, i));
            const double f32_to_exact = rel(part(f32, i), part(want_f64, i));
            const double f32_to_bf16_ref = rel(part(f32, i), part(want_bf16, i));
            CAPTURE(to_bf16_ref, bf16_to_exact, f32_to_exact, f32_to_bf16_ref);
            // float32 sums of the same bf16 products (rare ties of a rounding the reference takes
            // in float64 aside): far closer than bf16's own step, 2^-9 = 2e-3.
            CHECK(to_bf16_ref < 1e-4);
            // The rounding happened: float64 math without it is bf16's step away.
            CHECK(bf16_to_exact > 10 * to_bf16_ref);
            // Outside the guard the float32 path is what it was: float32-close to exact math.
            CHECK(f32_to_exact < 1e-5);
            CHECK(f32_to_bf16_ref > 10 * to_bf16_ref);
        }
    }
}

TEST_CASE("fused attention under autocast(bf16) across several key tiles stays within bf16's step",
          "[bf16][autocast][attention]") {
    if (!have_bf16()) return;
    // 700 keys: two key tiles, where the running max rescales what was accumulated, so the
    // unnormalised probabilities are rounded under a different max than the reference's.
    const Case c{1, 2, 1, 150, 700, 32, 32, true};
    const double scale = 0.2;
    const Inputs in = make_inputs(c, 9);
    const auto qv = in.q.to_vector<float>(), kv = in.k.to_vector<float>(), vv = in.v.to_vector<float>(),
               gv = in.g.to_vector<float>();
    Results want = reference(c, scale, qv, kv, vv, gv, true), exact = reference(c, scale, qv, kv, vv, gv, false);
    Results got = run(in, scale, c.causal, Precision::BFloat16, Precision::BFloat16);
    for (int i = 0; i < 4; ++i) {
        CAPTURE(kNames[i], rel(part(got, i), part(want, i)), rel(part(got, i), part(exact, i)));
        CHECK(rel(part(got, i), part(want, i)) < 5e-3);
        CHECK(rel(part(got, i), part(exact, i)) < 2e-2);
    }
}

TEST_CASE("the fused attention's backward keeps the mode of its forward", "[bf16][autocast][attention]") {
    if (!have_bf16()) return;
    const Case c{1, 4, 2, 70, 90, 32, 32, false};
    const double scale = 0.18;
    const Inputs in = make_inputs(c, 3);
    const auto qv = in.q.to_vector<float>(), kv = in.k.to_vector<float>(), vv = in.v.to_vector<float>(),
               gv = in.g.to_vector<float>();
    Results rounded = reference(c, scale, qv, kv, vv, gv, true), exact = reference(c, scale, qv, kv, vv, gv, false);
    // Forward under bf16, backward after the guard ended: the gradients still take bf16 products.
    Results a = run(in, scale, c.causal, Precision::BFloat16, Precision::Float32);
    // Forward in float32, backward inside a guard: float32 throughout.
    Results b = run(in, scale, c.causal, Precision::Float32, Precision::BFloat16);
    for (int i = 1; i < 4; ++i) {
        CAPTURE(kNames[i]);
        CHECK(rel(part(a, i), part(rounded, i)) < 1e-4);
        CHECK(rel(part(b, i), part(exact, i)) < 1e-5);
    }
}

TEST_CASE("float64 attention ignores autocast(bf16)", "[bf16][autocast][attention]") {
    Generator gen(4);
    const TensorOptions opts = TensorOptions{}.with_dtype(DType::Float64);
    const Tensor q = randn({1, 2, 9, 8}, gen, opts), k = randn({1, 1, 11, 8}, gen, opts),
                 v = randn({1, 1, 11, 8}, gen, opts);
    const auto plain = nn::flash_attention(q, k, v, 0.3, true).to_vector<double>();
    autocast::Guard guard(Precision::BFloat16);
    CHECK(nn::flash_attention(q, k, v, 0.3, true).to_vector<double>() == plain);
}

TEST_CASE("fused attention under autocast(bf16) refuses where bf16 products cannot run, naming the op",
          "[bf16][autocast][attention]") {
    cpu::detail::set_bf16_refusal_for_testing("simulated: no bf16 here");
    Generator gen(5);
    const Tensor q = randn({1, 2, 3, 4}, gen), k = randn({1, 1, 5, 4}, gen), v = randn({1, 1, 5, 6}, gen);
    std::string message;
    {
        autocast::Guard guard(Precision::BFloat16);
        try {
            nn::flash_attention(q, k, v, 0.5, false);
        } catch (const Error& e) {
            message = e.what();
        }
    }
    const Tensor plain = nn::flash_attention(q, k, v, 0.5, false);  // float32 still runs
    cpu::detail::set_bf16_refusal_for_testing("");
    INFO(message);
    CHECK(message.find("flash attention") != std::string::npos);
    CHECK(message.find("[1,2,3,4]") != std::string::npos);
    CHECK(message.find("simulated: no bf16 here") != std::string::npos);
    CHECK(plain.numel() == 2 * 3 * 6);
}
