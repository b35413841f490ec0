// CPU twin of kv_append_cuda: the same rows copied element by element.
#include <cstring>

#include "gsa/kernels/kv_append.h"

namespace gsa::kernels {

Status kv_append_reference(const KvAppendParams& p) {
  if (p.batch < 0 || p.kv_heads < 1 || p.head_dim < 1 || !p.k_new || !p.v_new || !p.positions || p.k.empty() ||
      p.v.empty()) {
    return Status::kInvalidArgument;
  }
  for (int b = 0; b < p.batch; ++b) {
    for (int kv = 0; kv < p.kv_heads; ++kv) {
      for (int value = 0; value < 2; ++value) {
        const uint16_t* src =
            static_cast<const uint16_t*>(value ? p.v_new : p.k_new) + b * p.new_stride[0] + kv * p.new_stride[1];
        const KvRows& dst = value ? p.v : p.k;
        uint16_t* out = dst.head<uint16_t>(b, kv, p.kv_heads) + p.positions[b] * dst.row_stride;
        std::memcpy(out, src, sizeof(uint16_t) * p.head_dim);
      }
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
