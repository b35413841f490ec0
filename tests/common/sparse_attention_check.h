// Shared check of the block-sparse attention kernels (runtime/sparse_attention.h) against the float64 dense
// oracle (dense_reference.h): out, lse, and dq/dk/dv of sum(out * w) + sum(lse * u) on random packed layouts,
// with the dtype's relative-error bound (tolerance.h). Used by the CPU-twin unit test and the CUDA gpu test.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace gsa::test {

struct SparseCase {
  int64_t levels = 1, chunk = 4, fanout = 2, sink = 3, prev = 1;
  int64_t hq = 4, hkv = 1, head_dim = 64;
  int64_t max_doc_tokens = 48;  // each row packs 1-3 documents of up to this many context tokens
  bool selective = false, keep_gists = false;
  at::ScalarType dtype = at::kBFloat16;
  // Backward work items of at most this many query tiles (atomic dk/dv; on CUDA dq by atomics in the key-tile
  // pass); 0: one item per key tile and dq by the query-block pass (deterministic).
  int64_t max_backward_tiles = 2;
};

// Runs one random batch of two rows on `device` and checks everything; seed picks the batch and tensors.
void check_sparse_attention(const SparseCase& c, at::Device device, uint64_t seed);

}  // namespace gsa::test
