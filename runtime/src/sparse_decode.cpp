#include "gsa/runtime/sparse_decode.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

#include "gsa/kernels/sparse_decode.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/env_knob.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

namespace gsa {

std::string sparse_decode_unsupported(const at::Tensor& q, at::ScalarType kv_dtype, int64_t kv_heads) {
  if (q.dim() != 3) return "q must be [B, Hq, D]";
  return sparse_decode_unsupported(q.scalar_type(), q.size(1), q.size(2), kv_dtype, kv_heads);
}

std::string sparse_decode_unsupported(at::ScalarType q_dtype, int64_t q_heads, int64_t head_dim,
                                      at::ScalarType kv_dtype, int64_t kv_heads) {
  if (q_dtype != at::kBFloat16 && q_dtype != at::kHalf) return "the kernels take bf16 or fp16";
  if (kv_dtype != q_dtype) return "q, k and v differ in dtype";
  const int64_t D = head_dim, Hq = q_heads, Hkv = kv_heads;
  if (D != 64 && D != 128) return "the kernels take head dim 64 or 128";
  if (Hq % Hkv != 0 || (Hq / Hkv != 1 && Hq / Hkv != 2 && Hq / Hkv != 4 && Hq / Hkv != 8)) {
    return "the kernels pack 1, 2, 4 or 8 query heads per kv head";
  }
  return "";
}

namespace {

// Listed rows a split takes at least: GSA_DECODE_MIN_SPLIT_ROWS (a positive integer; default 128). Fewer rows a
// split make more CTAs, each with fewer dependent row loads (a tuning knob for A/B runs, docs/PERFORMANCE.md).
int64_t min_split_rows() {
  static const int64_t rows = env_integer("GSA_DECODE_MIN_SPLIT_ROWS", 128, 1);
  return rows;
}

void check_decode_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_rows,
                         const DecodeRange* range) {
  GSA_CHECK(q.dim() == 3 && k.dim() == 4 && v.dim() == 4 && key_rows.dim() == 3,
            "sparse_decode wants q [B, Hq, D], k/v [B, Hkv, T, D] and key_rows [B, Hkv, R], got ", q.sizes(), ", ",
            k.sizes(), ", ", key_rows.sizes());
  GSA_CHECK(k.sizes() == v.sizes(), "sparse_decode: k ", k.sizes(), " and v ", v.sizes(), " differ");
  const int64_t B = q.size(0), D = q.size(2), Hkv = k.size(1);
  GSA_CHECK(k.size(0) == B && k.size(3) == D && key_rows.size(0) == B && key_rows.size(1) == Hkv,
            "sparse_decode: q ", q.sizes(), ", k ", k.sizes(), " and key_rows ", key_rows.sizes(),
            " do not fit together");
  GSA_CHECK(q.size(1) % Hkv == 0, "sparse_decode: query heads ", q.size(1), " not a multiple of kv heads ", Hkv);
  GSA_CHECK(q.device() == k.device() && k.device() == v.device(), "sparse_decode: q, k, v on one device");
  if (key_rows.size(2) > 0 && key_rows.device().is_cpu()) {  // lists built on the host are checked
    const int64_t highest = key_rows.max().item<int64_t>();
    GSA_CHECK(highest < k.size(2), "sparse_decode: key_rows reach row ", highest, " of a cache of ", k.size(2),
              " rows");
  }
  if (range != nullptr) {
    GSA_CHECK(range->begin.dim() == 1 && range->begin.size(0) == B && range->end.sizes() == range->begin.sizes() &&
                  range->begin.device() == q.device() && range->end.device() == q.device(),
              "sparse_decode: range begin/end must be [", B, "] on ", q.device());
    GSA_CHECK(range->max_rows >= 0, "sparse_decode: range max_rows must be >= 0");
    if (q.device().is_cpu()) {
      GSA_CHECK(B == 0 || (range->end.max().item<int64_t>() <= k.size(2) && range->begin.min().item<int64_t>() >= 0),
                "sparse_decode: the row range leaves the cache of ", k.size(2), " rows");
      GSA_CHECK(B == 0 || (range->end - range->begin).max().item<int64_t>() <= range->max_rows,
                "sparse_decode: a row range is longer than its max_rows ", range->max_rows);
    }
  }
}

// At least `count` int32 ticket counters of the kernels' split merge on CUDA device `device`, zero (every launch
// that completes leaves them zero). One tensor per device, shared by every call there; grown (at least doubled)
// when a batch needs more, and the one it replaces is kept alive: a CUDA graph captured earlier keeps the address
// it was captured with. Never allocated during a capture: memory allocated there belongs to the graph's pool and
// its zero fill would only run at replay.
at::Tensor split_tickets(const at::Device& device, int64_t count) {
  static std::mutex mutex;
  static auto* current = new std::vector<at::Tensor>();  // by device index; never destroyed (no teardown order
  static auto* retired = new std::vector<at::Tensor>();  // issue with the CUDA context at exit)
  const std::lock_guard<std::mutex> lock(mutex);
  const auto index = static_cast<size_t>(device.index());
  if (current->size() <= index) current->resize(index + 1);
  at::Tensor& tickets = (*current)[index];
  if (tickets.defined() && tickets.numel() >= count) return tickets;
  GSA_CHECK(!DecodeStepGraph::capturing(), "sparse_decode: the split-merge tickets of ", count,
            " (sequence, KV head) pairs on ", device, " must exist before a CUDA-graph capture (",
            tickets.defined() ? tickets.numel() : 0, " do): run the step eagerly once first");
  const int64_t size = std::max(count, tickets.defined() ? 2 * tickets.numel() : count);
  if (tickets.defined()) retired->push_back(tickets);
  tickets = at::zeros({size}, at::TensorOptions().dtype(at::kInt).device(device));
#ifdef GSA_HAVE_CUDA
  // The fill runs on the current stream; a later call may launch on another.
  at::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
  return tickets;
}

}  // namespace

DecodeAttention sparse_decode_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& key_rows_in, double scale, const DecodeRange* range) {
  check_decode_inputs(q, k, v, key_rows_in, range);
  at::NoGradGuard no_grad;
  const int64_t B = q.size(0), Hq = q.size(1), D = q.size(2), Hkv = k.size(1), g = Hq / Hkv;
  at::Tensor rows = key_rows_in.to(q.device(), at::kLong);                               // [B, Hkv, R]
  if (range != nullptr && range->max_rows > 0) {
    at::Tensor r = range->begin.to(at::kLong).view({B, 1}) + at::arange(range->max_rows, rows.options());
    r = r.masked_fill(r >= range->end.to(at::kLong).view({B, 1}), -1);                  // [B, M]
    rows = at::cat({rows, r.unsqueeze(1).expand({B, Hkv, range->max_rows})}, 2);
  }
  const at::Tensor batch = at::arange(B, rows.options()).view({B, 1, 1});
  const at::Tensor heads = at::arange(Hkv, rows.options()).view({1, Hkv, 1});
  const at::Tensor safe = rows.clamp_min(0);
  const at::Tensor keys = k.index({batch, heads, safe}).to(at::kFloat);                   // [B, Hkv, R, D]
  const at::Tensor values = v.index({batch, heads, safe}).to(at::kFloat);
  at::Tensor scores = at::matmul(q.to(at::kFloat).view({B, Hkv, g, D}), keys.transpose(2, 3)) * scale;
  scores = scores.masked_fill((rows < 0).unsqueeze(2), -std::numeric_limits<float>::infinity());  // [B, Hkv, g, R]
  at::Tensor lse = at::logsumexp(scores, -1, /*keepdim=*/true);                         // [B, Hkv, g, 1]
  at::Tensor probs = at::exp(scores - lse.masked_fill(at::isinf(lse), 0));
  at::Tensor out = at::matmul(probs, values);                                            // [B, Hkv, g, D]
  return {out.reshape({B, Hq, D}), lse.reshape({B, Hq})};
}

DecodeAttention sparse_decode(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                              const at::Tensor& key_rows_in, double scale, int64_t splits, const DecodeRange* range,
                              at::ScalarType out_dtype) {
  check_decode_inputs(q_in, k_in, v_in, key_rows_in, range);
  const std::string why = v_in.scalar_type() != k_in.scalar_type()
                              ? "q, k and v differ in dtype"
                              : sparse_decode_unsupported(q_in, k_in.scalar_type(), k_in.size(1));
  GSA_CHECK(why.empty(), "sparse_decode cannot run q ", q_in.sizes(), " ", q_in.scalar_type(), ": ", why);
  const at::Tensor k = rows_for_16_byte_loads(k_in), v = rows_for_16_byte_loads(v_in);
  return sparse_decode_rows(q_in, kv_rows_of(k), kv_rows_of(v), k.size(1), key_rows_in, scale, splits, range,
                            out_dtype);
}

DecodeAttention sparse_decode_rows(const at::Tensor& q_in, const kernels::KvRows& k, const kernels::KvRows& v,
                                   int64_t kv_heads, const at::Tensor& key_rows_in, double scale, int64_t splits,
                                   const DecodeRange* range, at::ScalarType out_dtype) {
  GSA_CHECK(splits >= 0, "sparse_decode: splits must be >= 0, got ", splits);
  GSA_CHECK(out_dtype == at::kFloat ||
                (out_dtype == q_in.scalar_type() && is_half_type(out_dtype)),
            "sparse_decode: out_dtype must be float32 or q's dtype (bf16 or fp16) ", q_in.scalar_type(), ", got ",
            out_dtype);
  GSA_CHECK(q_in.dim() == 3 && key_rows_in.dim() == 3 && key_rows_in.size(0) == q_in.size(0) &&
                key_rows_in.size(1) == kv_heads,
            "sparse_decode: q ", q_in.sizes(), " and key_rows ", key_rows_in.sizes(), " do not fit ", kv_heads,
            " kv heads");
  at::NoGradGuard no_grad;
  const int64_t B = q_in.size(0), Hq = q_in.size(1), D = q_in.size(2), Hkv = kv_heads;
  const at::Tensor q = rows_for_16_byte_loads(q_in);
  const at::Tensor key_rows = key_rows_in.to(q.device(), at::kInt).contiguous();
  const int64_t R = key_rows.size(2);
  at::Tensor range_begin, range_end;
  if (range != nullptr) {
    range_begin = range->begin.to(at::kInt).contiguous();
    range_end = range->end.to(at::kInt).contiguous();
  }
  kernels::SparseDecodeParams p;
  p.dtype = kernel_dtype(q);
  p.batch = static_cast<int32_t>(B);
  p.q_heads = static_cast<int32_t>(Hq);
  p.kv_heads = static_cast<int32_t>(Hkv);
  p.head_dim = static_cast<int32_t>(D);
  p.max_keys = static_cast<int32_t>(R);
  p.scale = static_cast<float>(scale);
  p.q = q.data_ptr();
  p.q_stride[0] = q.stride(0);
  p.q_stride[1] = q.stride(1);
  p.k = k;
  p.v = v;
  if (splits == 0) {
    // When the (sequence, KV head) pairs alone leave the GPU's SMs idle, as many splits as make one full wave of
    // the kernel's CTAs (a second, partial wave would cost as much as the first); else enough CTAs to fill an
    // H100/H200 four times over. At least min_split_rows() listed rows per split. Sized on the listed rows only,
    // not on the generated range: the range grows every step while the list of a decode plan stays, so a step
    // replayed from a CUDA graph (captured with its split count) and the same step run eagerly split alike and
    // give the same bits.
    const int64_t pairs = B * Hkv;
    const int64_t wave = q.is_cuda() ? kernels::sparse_decode_wave_ctas(p) : 0;
    const int64_t want = wave > pairs ? wave / pairs : (4 * 132 + pairs - 1) / pairs;
    splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, R / min_split_rows()));
  }
  p.splits = static_cast<int32_t>(splits);
  const auto fp32 = q.options().dtype(at::kFloat);
  DecodeAttention result{at::empty({B, Hq, D}, q.options().dtype(out_dtype)), at::empty({B, Hq}, fp32)};
  at::Tensor partial_out, partial_lse, tickets;  // [splits, B * Hq, D], [splits, B * Hq], [>= B * Hkv]
  if (splits > 1 && q.is_cuda()) {                // the CPU twin needs no workspace
    partial_out = at::empty({splits, B * Hq, D}, fp32);
    partial_lse = at::empty({splits, B * Hq}, fp32);
    tickets = split_tickets(q.device(), B * Hkv);
    p.partial_out = partial_out.data_ptr<float>();
    p.partial_lse = partial_lse.data_ptr<float>();
    p.tickets = tickets.data_ptr<int32_t>();
  }
  p.key_rows = key_rows.data_ptr<int32_t>();
  if (range != nullptr) {
    p.range_begin = range_begin.data_ptr<int32_t>();
    p.range_end = range_end.data_ptr<int32_t>();
  }
  if (out_dtype == at::kFloat) {
    p.out = result.out.data_ptr<float>();
  } else {
    p.out_half = result.out.data_ptr();
  }
  p.lse = result.lse.data_ptr<float>();

  const kernels::Status status = run_kernel(
      q.device(), [&](void* stream) { return kernels::sparse_decode_cuda(p, stream); },
      [&] { return kernels::sparse_decode_reference(p); });
  GSA_CHECK(status == kernels::Status::kOk, "sparse_decode failed on ", q.device(), " for q ", q.sizes(), ": ",
            kernels::status_string(status));
  return result;
}

}  // namespace gsa
