// The CPU's vectorized row loops against std::exp in double.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/vector_math.h"

using namespace latte::cpu;

TEST_CASE("the float exp of exp_shifted_sum is within 2 ulp of exp, its sum exact to double", "[backends][exp]") {
    std::vector<float> x;
    for (float v = -87.0f; v <= 88.7f; v += 0.00731f) x.push_back(v);  // up to ln(FLT_MAX)
    std::vector<float> y = x;
    const double sum = exp_shifted_sum(y.data(), static_cast<int64_t>(y.size()), 0.0f);
    double want_sum = 0, worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double want = std::exp(static_cast<double>(x[i]));
        want_sum += y[i];
        worst = std::max(worst, std::fabs(y[i] - want) / want);
    }
    INFO("worst relative error " << worst);
    REQUIRE(worst < 2.5e-7);  // 2 ulp of float
    REQUIRE(sum == Approx(want_sum).epsilon(1e-12));
    // The shift, -inf (a masked score) and NaN.
    std::vector<float> z = {1.0f, -std::numeric_limits<float>::infinity(), 3.0f, -200.0f};
    exp_shifted_sum(z.data(), 4, 3.0f);
    REQUIRE(z[0] == Approx(std::exp(-2.0)).epsilon(3e-7));
    REQUIRE(z[1] == 0.0f);
    REQUIRE(z[2] == 1.0f);
    REQUIRE(z[3] == 0.0f);
    std::vector<float> n = {0.0f, NAN};
    REQUIRE(std::isnan(exp_shifted_sum(n.data(), 2, 0.0f)));
    REQUIRE(std::isnan(n[1]));
}

TEST_CASE("max_of finds the largest element at any length", "[backends][exp]") {
    for (int64_t len : {1, 15, 16, 17, 100}) {
        std::vector<float> x(static_cast<size_t>(len));
        for (int64_t i = 0; i < len; ++i) x[static_cast<size_t>(i)] = std::sin(static_cast<float>(i) * 1.7f) * 10;
        x[static_cast<size_t>(len / 2)] = 42;
        REQUIRE(max_of(x.data(), len) == 42);
        std::vector<double> d(x.begin(), x.end());
        REQUIRE(max_of(d.data(), len) == 42);
    }
}

TEST_CASE("max_of's AVX-512 loop and its compiled clones agree, NaN and infinities included", "[backends][exp]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t len : {1, 2, 15, 16, 17, 31, 33, 128, 200}) {
        for (int64_t at = 0; at < len; at += len <= 33 ? 1 : 13) {  // every lane of a vector
            std::vector<float> x(static_cast<size_t>(len));
            for (int64_t i = 0; i < len; ++i) x[size_t(i)] = -50.0f + std::cos(static_cast<float>(i) * 0.9f);
            x[size_t(at)] = 7.0f;                         // the largest, at every place
            if (len > 2) x[size_t((at + 1) % len)] = nan;  // a NaN beside it is skipped
            std::vector<double> d(x.begin(), x.end());
            for (bool clones : {false, true}) {
                CAPTURE(len, at, clones);
                detail::force_exp_clones_for_testing(clones);
                const float m = max_of(x.data(), len);
                detail::force_exp_clones_for_testing(false);
                REQUIRE(m == 7.0f);
                REQUIRE(max_of(d.data(), len) == 7.0);
            }
        }
    }
    for (bool clones : {false, true}) {
        detail::force_exp_clones_for_testing(clones);
        std::vector<float> masked = {-inf, -inf, -inf}, nans = {nan, nan}, big = {1.0f, inf, nan};
        const float m_masked = max_of(masked.data(), 3), m_nans = max_of(nans.data(), 2), m_big = max_of(big.data(), 3);
        detail::force_exp_clones_for_testing(false);
        REQUIRE(m_masked == -inf);  // a fully masked row
        REQUIRE(m_nans == -inf);    // nothing but NaN: nothing to take
        REQUIRE(m_big == inf);
    }
}

TEST_CASE("sigmoid, silu and silu's derivative in float32 match double math", "[backends][exp]") {
    std::vector<float> x;
    for (float v = -30.0f; v <= 30.0f; v += 0.0173f) x.push_back(v);
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<float> y(x.size());
    for (int kind = 0; kind < 3; ++kind) {
        sigmoid_family(kind, y.data(), x.data(), n);
        // Within 1e-6 relative, plus 2^-23 absolute: silu's derivative crosses zero near
        // x = -1.28, where evaluating s (1 + x (1 - s)) in float cancels to about one ulp of its
        // terms (that is the formula's float rounding, the same with std::exp).
        double worst = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            const double v = x[i], s = 1.0 / (1.0 + std::exp(-v));
            const double want = kind == 0 ? s : kind == 1 ? v * s : s * (1 + v * (1 - s));
            worst = std::max(worst, std::fabs(y[i] - want) / (1e-6 * std::fabs(want) + 0x1p-23));
        }
        CAPTURE(kind);
        INFO("worst error in units of the tolerance " << worst);
        REQUIRE(worst <= 1.0);
    }
    std::vector<float> nan_in = {NAN}, nan_out(1);
    sigmoid_family(1, nan_out.data(), nan_in.data(), 1);
    REQUIRE(std::isnan(nan_out[0]));
}

TEST_CASE("the float exp overflows to inf past ln(FLT_MAX), so sigmoid and silu keep their limits", "[backends][exp]") {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> big = {88.5f, 88.7f, 88.8f, 100.0f, inf};
    exp_shifted_sum(big.data(), 5, 0.0f);
    REQUIRE(big[0] == Approx(std::exp(88.5)).epsilon(3e-7));  // finite, not exp(88)
    REQUIRE(big[1] == Approx(std::exp(static_cast<double>(88.7f))).epsilon(3e-7));
    REQUIRE(big[2] == inf);
    REQUIRE(big[3] == inf);
    REQUIRE(big[4] == inf);
    // PyTorch's float32 values: sigmoid(-100) = 0 (so log(sigmoid(-100)) is -inf, not -88),
    // silu(-inf) = NaN, silu(-100) = -0, sigmoid(-88.5) = 1 / (1 + e^88.5).
    const std::vector<float> x = {-inf, -100.0f, -88.5f, 100.0f, inf};
    std::vector<float> y(x.size());
    sigmoid_family(0, y.data(), x.data(), 5);
    REQUIRE(y[0] == 0.0f);
    REQUIRE(y[1] == 0.0f);
    REQUIRE(y[2] == Approx(1.0 / (1.0 + std::exp(88.5))).epsilon(1e-6));
    REQUIRE(y[3] == 1.0f);
    REQUIRE(y[4] == 1.0f);
    sigmoid_family(1, y.data(), x.data(), 5);
    REQUIRE(std::isnan(y[0]));
    REQUIRE(y[1] == 0.0f);
    REQUIRE(y[3] == 100.0f);
    REQUIRE(y[4] == inf);
}

TEST_CASE("the attention's row helpers match plain loops at every length", "[backends][exp]") {
    // Lengths around the vector widths (4, 8, 16 floats) and their remainders.
    for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 33, 64, 100}) {
        CAPTURE(n);
        std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            a[size_t(i)] = std::sin(0.37f * float(i) + 0.1f) * 3.0f;
            b[size_t(i)] = std::cos(0.91f * float(i)) - 0.25f;
        }
        std::vector<float> scaled(static_cast<size_t>(n));
        scale_row(scaled.data(), a.data(), 0.125f, n);
        for (int64_t i = 0; i < n; ++i) REQUIRE(scaled[size_t(i)] == a[size_t(i)] * 0.125f);  // one rounding each
        std::vector<float> in_place = a;
        scale_row(in_place.data(), in_place.data(), -3.0f, n);
        for (int64_t i = 0; i < n; ++i) REQUIRE(in_place[size_t(i)] == a[size_t(i)] * -3.0f);

        double want = 0, magnitude = 0;
        for (int64_t i = 0; i < n; ++i) {
            want += double(a[size_t(i)]) * b[size_t(i)];
            magnitude += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
        }
        REQUIRE(std::fabs(dot_double(a.data(), b.data(), n) - want) <= 1e-15 * (magnitude + 1));

        std::vector<float> ds = b;
        softmax_grad_row(ds.data(), a.data(), 0.5f, n);
        for (int64_t i = 0; i < n; ++i) REQUIRE(ds[size_t(i)] == a[size_t(i)] * (b[size_t(i)] - 0.5f));
    }
}

TEST_CASE("exp_shifted_sum's AVX-512 loop and its compiled clones agree, specials included", "[backends][exp]") {
    std::vector<float> x;
    for (float v = -100.0f; v <= 100.0f; v += 0.0371f) x.push_back(v);
    const float inf = std::numeric_limits<float>::infinity();
    x.insert(x.begin() + 5, {inf, -inf, std::numeric_limits<float>::quiet_NaN(), -87.0f, 88.7f, 88.8f});
    for (float shift : {0.0f, 3.5f}) {
        std::vector<float> fast = x, clones = x;
        const double fast_sum = exp_shifted_sum(fast.data(), static_cast<int64_t>(fast.size()), shift);
        detail::force_exp_clones_for_testing(true);
        const double clones_sum = exp_shifted_sum(clones.data(), static_cast<int64_t>(clones.size()), shift);
        detail::force_exp_clones_for_testing(false);
        REQUIRE(std::isinf(fast_sum) == std::isinf(clones_sum));
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(i, x[i], shift);
            if (std::isnan(clones[i])) {
                REQUIRE(std::isnan(fast[i]));
            } else if (std::isinf(clones[i]) || clones[i] == 0.0f) {
                REQUIRE(fast[i] == clones[i]);
            } else {
                REQUIRE(std::fabs(fast[i] - clones[i]) <= 5e-7f * clones[i]);  // each within 2 ulp of exp
            }
        }
    }
    // A fully masked row's shift is -inf: every value is then NaN (inf - inf) or exp(+inf).
    for (bool clones : {false, true}) {
        detail::force_exp_clones_for_testing(clones);
        std::vector<float> row = {-inf, -inf, 1.0f};
        exp_shifted_sum(row.data(), 3, -inf);
        detail::force_exp_clones_for_testing(false);
        REQUIRE(std::isnan(row[0]));
        REQUIRE(std::isnan(row[1]));
        REQUIRE(std::isinf(row[2]));
    }
}
