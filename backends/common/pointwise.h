// Pointwise math shared by the CPU and CUDA backends: one definition per op, compiled by g++
// and by nvcc, so both devices compute the same thing.
#pragma once
#include <cmath>

#include "../../core/backend.h"
#include "../../core/host_device.h"

namespace latte {

template <class T>
LATTE_HOST_DEVICE inline T apply_unary(UnaryOp op, T x, T alpha) {
    switch (op) {
        case UnaryOp::Neg: return -x;
        case UnaryOp::Exp: return exp(x);
        case UnaryOp::Log: return log(x);
        case UnaryOp::Sqrt: return sqrt(x);
        case UnaryOp::Tanh: return tanh(x);
        case UnaryOp::Relu: return x > T(0) ? x : T(0);
        case UnaryOp::Sign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
        case UnaryOp::AddScalar: return x + alpha;
        case UnaryOp::MulScalar: return x * alpha;
        case UnaryOp::PowScalar: return pow(x, alpha);
        case UnaryOp::RDivScalar: return alpha / x;
        case UnaryOp::Abs: return x < T(0) ? -x : x;
        case UnaryOp::Sigmoid: return T(1) / (T(1) + exp(-x));
        case UnaryOp::Silu: return x / (T(1) + exp(-x));
        case UnaryOp::SiluGrad: {  // s * (1 + x * (1 - s)), s = sigmoid(x)
            const T s = T(1) / (T(1) + exp(-x));
            return s * (T(1) + x * (T(1) - s));
        }
        // gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); d/dx = Phi(x) + x * phi(x)
        case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
        case UnaryOp::GeluErfGrad:
            return T(0.5) * (T(1) + erf(x * T(0.70710678118654752440))) +
                   x * exp(T(-0.5) * x * x) * T(0.39894228040143267794);
        // tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
        // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
        case UnaryOp::GeluTanh:
            return T(0.5) * x * (T(1) + tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)));
        case UnaryOp::GeluTanhGrad: {
            const T t = tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
            return T(0.5) * (T(1) + t) +
                   T(0.5) * x * (T(1) - t * t) * T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x * x);
        }
        case UnaryOp::MaxScalar: return x < alpha ? alpha : x;  // NaN stays NaN
        case UnaryOp::MinScalar: return x > alpha ? alpha : x;
        case UnaryOp::GeScalar: return x >= alpha ? T(1) : T(0);
        case UnaryOp::LeScalar: return x <= alpha ? T(1) : T(0);
    }
    return x;
}

template <class T>
LATTE_HOST_DEVICE inline T apply_binary(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::Add: return a + b;
        case BinaryOp::Sub: return a - b;
        case BinaryOp::Mul: return a * b;
        case BinaryOp::Div: return a / b;
        case BinaryOp::Eq: return a == b ? T(1) : T(0);
        case BinaryOp::Gt: return a > b ? T(1) : T(0);
    }
    return a;
}

}  // namespace latte
