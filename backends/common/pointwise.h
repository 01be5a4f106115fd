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
