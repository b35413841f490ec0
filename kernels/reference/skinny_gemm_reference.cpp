// CPU twin of skinny_gemm.h: each sum x[m] . W[n] (+ bias[n]) in float64, then the kernel's roundings (SiLU in
// fp32, as decode_step_ops' silu_mul). Deliberately plain: one weight row at a time, widened to double once and
// dotted with every activation row. kRopeAppend is the kNone GEMM, then rope_append_reference on its rows (k and v
// into scratch rows without positions).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gsa/kernels/skinny_gemm.h"
#include "half_storage.h"

namespace gsa::kernels {
namespace {

using detail::load_element;
using detail::store_element;

// v rounded to the dtype and read back as fp32.
float round_to(double v, DType dtype) {
  uint16_t bits;
  store_element(&bits, 0, v, dtype);
  return static_cast<float>(load_element(&bits, 0, dtype));
}

// Row `row` of a [rows, K] matrix widened to double.
std::vector<double> widened(const void* base, int64_t row, int64_t stride, int32_t k, DType dtype) {
  const uint16_t* r = static_cast<const uint16_t*>(base) + row * stride;
  std::vector<double> out(k);
  for (int32_t i = 0; i < k; ++i) out[i] = load_element(r, i, dtype);
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// 8 elements of the dtype: rows of these are 16-byte aligned, as the twins' checks ask.
struct alignas(16) Word {
  uint16_t e[8];
};

// kRopeAppend: the kNone GEMM into local qkv rows, rope_append_reference on them, q rows copied into out.
Status rope_gemm(const SkinnyGemmParams& p) {
  if (p.m == 0) return Status::kOk;
  const SkinnyRopeAppend& r = p.rope;
  const int64_t D = r.head_dim, q_cols = int64_t(r.q_heads) * D;
  std::vector<Word> qkv(int64_t(p.m) * p.n / 8), q(int64_t(p.m) * q_cols / 8);
  std::vector<Word> scratch(int64_t(p.m) * r.kv_heads * D / 8 * 2);  // [M, Hkv, 1, D] k, then v
  std::vector<int64_t> row_zero(p.m, 0);
  SkinnyGemmParams plain = p;
  plain.epilogue = SkinnyEpilogue::kNone;
  plain.rope = SkinnyRopeAppend();
  plain.out = qkv.data();
  plain.out_stride = p.n;
  Status status = skinny_gemm_reference(plain);
  if (status != Status::kOk) return status;
  RopeAppendParams a;
  a.dtype = p.dtype;
  a.batch = p.m;
  a.q_heads = r.q_heads;
  a.kv_heads = r.kv_heads;
  a.head_dim = r.head_dim;
  a.qkv = qkv.data();
  a.qkv_stride = p.n;
  a.cos = r.cos;
  a.cos_stride = r.cos_stride;
  a.sin_rotated = r.sin_rotated;
  a.sin_stride = r.sin_stride;
  a.q_out = q.data();
  a.positions = r.positions != nullptr ? r.positions : row_zero.data();
  if (r.positions != nullptr) {
    a.k = r.k;
    a.v = r.v;
  } else {
    uint16_t* k = reinterpret_cast<uint16_t*>(scratch.data());
    for (KvRows* rows : {&a.k, &a.v}) {
      rows->base = rows == &a.k ? k : k + int64_t(p.m) * r.kv_heads * D;
      rows->stride_b = r.kv_heads * D;
      rows->stride_h = D;
      rows->row_stride = D;
    }
  }
  status = rope_append_reference(a);
  if (status != Status::kOk) return status;
  for (int32_t m = 0; m < p.m; ++m) {
    std::memcpy(static_cast<uint16_t*>(p.out) + m * p.out_stride,
                reinterpret_cast<const uint16_t*>(q.data()) + m * q_cols, sizeof(uint16_t) * q_cols);
  }
  return Status::kOk;
}

}  // namespace

Status skinny_gemm_reference(const SkinnyGemmParams& p) {
  if (!skinny_gemm_valid(p)) return Status::kInvalidArgument;
  if (p.epilogue == SkinnyEpilogue::kRopeAppend) return rope_gemm(p);
  const bool silu = p.epilogue == SkinnyEpilogue::kSiluMul;
  const int64_t cols = skinny_gemm_out_cols(p);
  std::vector<std::vector<double>> x(p.m);  // [M][K]
  for (int32_t m = 0; m < p.m; ++m) x[m] = widened(p.x, m, p.x_stride, p.k, p.dtype);
  // The sums of weight row n with every activation row (bias included). -> [M]
  auto sums = [&](int64_t n) {
    const std::vector<double> w = widened(p.weight, n, p.weight_stride, p.k, p.dtype);
    const double bias = p.bias == nullptr ? 0.0 : load_element(p.bias, n, p.dtype);
    std::vector<double> s(p.m);
    for (int32_t m = 0; m < p.m; ++m) s[m] = dot(x[m], w) + bias;
    return s;
  };
  for (int64_t col = 0; col < cols; ++col) {
    const std::vector<double> acc = sums(col);
    const std::vector<double> up = silu ? sums(cols + col) : std::vector<double>();
    for (int32_t m = 0; m < p.m; ++m) {
      float v;
      if (silu) {  // round(silu(round(g))) * round(u), fp32
        const float g = round_to(acc[m], p.dtype);
        v = round_to(g / (1.f + std::exp(-g)), p.dtype) * round_to(up[m], p.dtype);
      } else {
        v = static_cast<float>(acc[m]);
      }
      const int64_t at = m * p.out_stride + col;
      if (p.out_float) {
        static_cast<float*>(p.out)[at] = round_to(v, p.dtype);
      } else {
        store_element(p.out, at, v, p.dtype);
      }
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
