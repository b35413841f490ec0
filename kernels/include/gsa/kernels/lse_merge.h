// Log-sum-exp merge of partial attention results: the combine step of split-K / Flash-Decoding style
// attention, of the GSA attention parts (band, sink, gists, selected chunks), and of the partials that the
// owners of unfolded chunks return in sequence parallelism.
//
// Contract: given P partial results for R rows, each an output row o_p[r] (D floats, already normalised by its
// own softmax denominator) and its log-sum-exp l_p[r] (-inf for an empty key set), writes
//   lse[r] = log(sum_p exp(l_p[r]))  and  out[r] = sum_p exp(l_p[r] - lse[r]) * o_p[r],
// in fp32 with the running-max form (no overflow). A row whose parts are all empty gets out = 0, lse = -inf.
// Framework-free: raw pointers, contiguous row-major layouts, a status code, no allocation.
#pragma once

#include <cstdint>

namespace gsa::kernels {

enum class Status { kOk = 0, kInvalidArgument = 1, kCudaError = 2, kNoCuda = 3 };
const char* status_string(Status status);

struct LseMergeParams {
  const float* partial_out = nullptr;  // [P, R, D]
  const float* partial_lse = nullptr;  // [P, R]
  float* out = nullptr;                // [R, D]
  float* lse = nullptr;                // [R]
  int64_t num_parts = 0;               // P >= 1
  int64_t rows = 0;                    // R >= 0
  int64_t dim = 0;                     // D >= 1
};

// CUDA kernel; pointers are device pointers; stream is a cudaStream_t (nullptr = default stream).
// Returns kNoCuda when the library was built without nvcc.
Status lse_merge_cuda(const LseMergeParams& params, void* stream);

// CPU reference twin, same signature and semantics, float64 accumulation; host pointers.
Status lse_merge_reference(const LseMergeParams& params);

}  // namespace gsa::kernels
