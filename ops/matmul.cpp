#include "ops/matmul.h"

#include "core/autocast.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/movement.h"

namespace latte {
namespace {

// How a backend sees one matrix operand: base pointer, whether it is transposed, its leading
// dimension, and one element offset per batch.
struct Operand {
    Tensor keep;  // holds the storage alive (may be a contiguous copy)
    bool trans = false;
    int64_t ld = 0;
    std::vector<int64_t> offsets;
};

// Batch offsets of x (shape batch + [rows, cols], batch already broadcast) in row-major order.
std::vector<int64_t> batch_offsets(const Tensor& x, int64_t batch_dims) {
    int64_t count = 1;
    for (int64_t d = 0; d < batch_dims; ++d) count *= x.shape()[static_cast<size_t>(d)];
    std::vector<int64_t> offsets(static_cast<size_t>(count), 0);
    Shape index(static_cast<size_t>(batch_dims), 0);
    for (int64_t i = 0; i < count; ++i) {
        int64_t off = 0;
        for (int64_t d = 0; d < batch_dims; ++d) off += index[static_cast<size_t>(d)] * x.strides()[static_cast<size_t>(d)];
        offsets[static_cast<size_t>(i)] = off;
        for (int64_t d = batch_dims - 1; d >= 0; --d) {
            if (++index[static_cast<size_t>(d)] < x.shape()[static_cast<size_t>(d)]) break;
            index[static_cast<size_t>(d)] = 0;
        }
    }
    return offsets;
}

// BLAS takes a matrix whose rows or columns are unit-stride; anything else is copied first.
Operand as_operand(const Tensor& x, int64_t batch_dims) {
    const int64_t rows = x.shape()[static_cast<size_t>(batch_dims)];
    const int64_t cols = x.shape()[static_cast<size_t>(batch_dims + 1)];
    const int64_t rs = x.strides()[static_cast<size_t>(batch_dims)];
    const int64_t cs = x.strides()[static_cast<size_t>(batch_dims + 1)];
    Operand op;
    if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) {
        op.keep = x;
        op.ld = rs;
    } else if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) {
        op.keep = x;
        op.trans = true;
        op.ld = cs;
    } else {
        // Copy only the distinct matrices: a stride-0 (broadcast) batch dim stays stride 0.
        Shape shape = x.shape(), strides = x.strides();
        for (int64_t d = 0; d < batch_dims; ++d)
            if (strides[static_cast<size_t>(d)] == 0) shape[static_cast<size_t>(d)] = 1;
        Tensor dense = contiguous(x.as_strided(shape, strides, x.offset()));
        Shape dense_strides = dense.strides();
        for (int64_t d = 0; d < batch_dims; ++d)
            if (x.strides()[static_cast<size_t>(d)] == 0) dense_strides[static_cast<size_t>(d)] = 0;
        op.keep = dense.as_strided(x.shape(), dense_strides, dense.offset());
        op.ld = std::max<int64_t>(cols, 1);
    }
    op.offsets = batch_offsets(op.keep, batch_dims);
    return op;
}

// The matrix at batch index 0 of x (batch.., rows, cols), as a 2-D view.
Tensor first_matrix(const Tensor& x, int64_t batch_dims) {
    const auto r = static_cast<size_t>(batch_dims);
    return x.as_strided({x.shape()[r], x.shape()[r + 1]}, {x.strides()[r], x.strides()[r + 1]}, x.offset());
}

// Forward product of a (batch.., M, K) and b (batch.., K, N), batch dims already equal; with
// bf16, of their values rounded to bf16 (autocast.h).
Tensor matmul_raw(const Tensor& a, const Tensor& b, bool bf16) {
    const int64_t batch_dims = a.dim() - 2;
    const int64_t m = a.shape()[static_cast<size_t>(batch_dims)];
    const int64_t k = a.shape()[static_cast<size_t>(batch_dims + 1)];
    const int64_t n = b.shape()[static_cast<size_t>(batch_dims + 1)];
    Shape out_shape(a.shape().begin(), a.shape().end() - 2);
    out_shape.push_back(m);
    out_shape.push_back(n);
    Tensor out = Tensor::empty(out_shape, a.options());
    if (out.numel() == 0) return out;
    if (k == 0) {
        backend_for(a.device()).fill(out.view(), 0.0);
        return out;
    }

    GemmArgs g;
    g.dtype = a.dtype();
    g.bf16 = bf16;
    g.m = m;
    g.n = n;
    g.k = k;
    // When b is one matrix shared by the whole batch and a's batch rows are evenly spaced, fold the
    // batch into M: one large gemm instead of many small ones (the Linear-layer case).
    const bool b_shared = [&] {
        for (int64_t d = 0; d < batch_dims; ++d)
            if (b.strides()[static_cast<size_t>(d)] != 0 && b.shape()[static_cast<size_t>(d)] != 1) return false;
        return true;
    }();
    Tensor a_folded;
    if (b_shared && batch_dims > 0) {
        if (a.numel() == m * k) {  // one matrix: no copy, whatever its layout (a transposed one too)
            a_folded = first_matrix(a, batch_dims);
        } else {
            Tensor ac = a.is_contiguous() ? a : contiguous(a);
            a_folded = ac.as_strided({ac.numel() / k, k}, {k, 1}, ac.offset());
        }
        g.m = a_folded.shape()[0];
    }
    const int64_t fold_dims = a_folded.defined() ? 0 : batch_dims;
    Operand oa = as_operand(a_folded.defined() ? a_folded : a, fold_dims);
    Operand ob = as_operand(a_folded.defined() ? first_matrix(b, batch_dims) : b, fold_dims);
    g.trans_a = oa.trans;
    g.trans_b = ob.trans;
    g.lda = oa.ld;
    g.ldb = ob.ld;
    g.ldc = n;
    g.a = oa.keep.view().data;
    g.b = ob.keep.view().data;
    g.c = out.view().data;
    g.a_offsets = oa.offsets;
    g.b_offsets = ob.offsets;
    g.c_offsets.resize(oa.offsets.size());
    for (size_t i = 0; i < g.c_offsets.size(); ++i) g.c_offsets[i] = static_cast<int64_t>(i) * m * n;
    backend_for(a.device()).gemm(g);
    return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
    check_same_kind("matmul", a_in, b_in);
    check_floating("matmul", a_in);
    LATTE_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: both arguments need at least 1 dim, got ",
                shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
    // Promote 1-D operands the way torch.matmul does, and drop the added dim at the end.
    const bool vec_a = a_in.dim() == 1, vec_b = b_in.dim() == 1;
    if (vec_a || vec_b) {
        Tensor out = matmul(vec_a ? unsqueeze(a_in, 0) : a_in, vec_b ? unsqueeze(b_in, 1) : b_in);
        if (vec_b) out = squeeze(out, -1);
        if (vec_a) out = squeeze(out, vec_b ? -1 : -2);
        return out;
    }

    const int64_t ka = a_in.size(-1), kb = b_in.size(-2);
    LATTE_CHECK(ka == kb, "matmul: cannot multiply ", shape_str(a_in.shape()), " by ", shape_str(b_in.shape()), " (",
                ka, " != ", kb, ")");
    const Shape batch_a(a_in.shape().begin(), a_in.shape().end() - 2);
    const Shape batch_b(b_in.shape().begin(), b_in.shape().end() - 2);
    Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
    Shape shape_a = batch, shape_b = batch;
    shape_a.insert(shape_a.end(), {a_in.size(-2), ka});
    shape_b.insert(shape_b.end(), {kb, b_in.size(-1)});
    Tensor a = expand(a_in, shape_a), b = expand(b_in, shape_b);

    // Under autocast(bf16), float32 products and their backward products run in bf16.
    const bool bf16 = autocast::current() == autocast::Precision::BFloat16 && a.dtype() == DType::Float32;
    if (bf16) {
        std::string why_not;
        LATTE_CHECK(autocast::bf16_available(a.device(), &why_not), "matmul of ", shape_str(a_in.shape()), " by ",
                    shape_str(b_in.shape()), " on ", a.device().str(), " under autocast(bf16): ", why_not);
    }
    Tensor out = matmul_raw(a.detach(), b.detach(), bf16);
    if (needs_graph({a_in, b_in})) {
        // da = g @ b^T, db = a^T @ g, each summed over the batch dims its operand was broadcast in.
        // The node takes the unbroadcast operands so that a weight shared by the whole batch gets
        // its gradient from one folded gemm, not from a batch of products summed afterwards.
        Tensor as = a_in.detach(), bs = b_in.detach();
        record(out, "matmul", {a_in, b_in}, [as, bs, shape_a, shape_b, bf16](const Tensor& g, const std::vector<bool>& needs) {
            std::vector<Tensor> grads(2);
            const int64_t k = as.size(-1), n = bs.size(-1);
            if (needs[0]) grads[0] = sum_to(matmul_raw(g, transpose(expand(bs, shape_b), -1, -2), bf16), as.shape());
            if (needs[1] && bs.dim() == 2 && g.dim() > 2) {
                Tensor a2 = reshape(expand(as, shape_a), {-1, k});
                grads[1] = matmul_raw(transpose(a2, 0, 1), reshape(g, {-1, n}), bf16);
            } else if (needs[1]) {
                grads[1] = sum_to(matmul_raw(transpose(expand(as, shape_a), -1, -2), g, bf16), bs.shape());
            }
            return grads;
        }, {as, bs});
    }
    return out;
}

}  // namespace latte
