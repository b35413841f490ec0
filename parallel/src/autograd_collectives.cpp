#include "gsa/parallel/autograd_collectives.h"

#include <algorithm>
#include <numeric>

#include <torch/csrc/autograd/custom_function.h>

#include "gsa/parallel/phase_timers.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The shape of `rows` rows of x (dim 0 replaced).
std::vector<int64_t> rows_shape(const at::Tensor& x, int64_t rows) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] = rows;
  return shape;
}

int64_t sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

Communicator* comm_of(AutogradContext* ctx) {
  return reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
}

// Variable-count all-gather: pads every rank's rows to the largest count.
at::Tensor gather_padded(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& counts) {
  const int64_t max_rows = *std::max_element(counts.begin(), counts.end());
  at::Tensor padded = at::zeros(rows_shape(x, max_rows), x.options());
  padded.narrow(0, 0, x.size(0)).copy_(x);
  at::Tensor gathered = at::empty(rows_shape(x, max_rows * comm.size()), x.options());
  comm.all_gather(padded, gathered);
  std::vector<at::Tensor> blocks;
  for (int r = 0; r < comm.size(); ++r) blocks.push_back(gathered.narrow(0, r * max_rows, counts[r]));
  return at::cat(blocks, 0);
}

at::Tensor reduce_scatter_padded(const at::Tensor& grad, Communicator& comm, const std::vector<int64_t>& counts) {
  const int64_t max_rows = *std::max_element(counts.begin(), counts.end());
  at::Tensor padded = at::zeros(rows_shape(grad, max_rows * comm.size()), grad.options());
  int64_t offset = 0;
  for (int r = 0; r < comm.size(); ++r) {
    padded.narrow(0, r * max_rows, counts[r]).copy_(grad.narrow(0, offset, counts[r]));
    offset += counts[r];
  }
  at::Tensor mine = at::empty(rows_shape(grad, max_rows), grad.options());
  comm.reduce_scatter(padded, mine);
  return mine.narrow(0, 0, counts[comm.rank()]);
}

// The point-to-point part of exchange_rows, forward and reverse.
at::Tensor run_exchange(const at::Tensor& x, Communicator& comm, const RowExchange& ex) {
  std::vector<PeerTransfer> sends, recvs;
  for (const RowSend& s : ex.sends) sends.push_back({s.peer, x.narrow(0, s.begin, s.count).contiguous()});
  std::vector<at::Tensor> blocks;
  for (const RowRecv& r : ex.recvs) {
    blocks.push_back(at::empty(rows_shape(x, r.count), x.options()));
    recvs.push_back({r.peer, blocks.back()});
  }
  comm.send_recv(sends, recvs);
  return blocks.empty() ? at::empty(rows_shape(x, 0), x.options()) : at::cat(blocks, 0);
}

at::Tensor reverse_exchange(const at::Tensor& grad_out, Communicator& comm, const RowExchange& ex,
                            const std::vector<int64_t>& x_shape) {
  std::vector<PeerTransfer> sends, recvs;
  int64_t offset = 0;
  for (const RowRecv& r : ex.recvs) {
    sends.push_back({r.peer, grad_out.narrow(0, offset, r.count).contiguous()});
    offset += r.count;
  }
  std::vector<at::Tensor> blocks;
  for (const RowSend& s : ex.sends) {
    std::vector<int64_t> shape = x_shape;
    shape[0] = s.count;
    blocks.push_back(at::empty(shape, grad_out.options()));
    recvs.push_back({s.peer, blocks.back()});
  }
  comm.send_recv(sends, recvs);
  at::Tensor grad_x = at::zeros(x_shape, grad_out.options());
  for (size_t i = 0; i < ex.sends.size(); ++i) grad_x.narrow(0, ex.sends[i].begin, ex.sends[i].count).add_(blocks[i]);
  return grad_x;
}

at::Tensor run_all_to_all(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& send_counts,
                          const std::vector<int64_t>& recv_counts) {
  at::Tensor out = at::empty(rows_shape(x, sum(recv_counts)), x.options());
  comm.all_to_all_v(x.contiguous(), send_counts, out, recv_counts);
  return out;
}

// The phase the forward ran under (phase_timers.h): its backward is timed under it too.
Phase saved_phase(AutogradContext* ctx) { return static_cast<Phase>(ctx->saved_data["phase"].toInt()); }

struct AllGatherRows : torch::autograd::Function<AllGatherRows> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* comm,
                            std::vector<int64_t> counts) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["phase"] = static_cast<int64_t>(PhaseTimers::current_phase());
    ctx->saved_data["counts"] = counts;
    return gather_padded(x.contiguous(), *comm, counts);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    ScopedPhase timed(saved_phase(ctx));
    const std::vector<int64_t> counts = ctx->saved_data["counts"].toIntVector();
    return {reduce_scatter_padded(grads[0].contiguous(), *comm_of(ctx), counts), at::Tensor(), at::Tensor()};
  }
};

// The exchange kept in the autograd context as flat integers: sends (peer, begin, count), recvs (peer, count).
std::vector<int64_t> flatten(const RowExchange& ex) {
  std::vector<int64_t> flat{static_cast<int64_t>(ex.sends.size())};
  for (const RowSend& s : ex.sends) flat.insert(flat.end(), {s.peer, s.begin, s.count});
  for (const RowRecv& r : ex.recvs) flat.insert(flat.end(), {r.peer, r.count});
  return flat;
}

RowExchange unflatten(const std::vector<int64_t>& flat) {
  RowExchange ex;
  const size_t sends = static_cast<size_t>(flat[0]);
  for (size_t i = 0; i < sends; ++i) {
    ex.sends.push_back({static_cast<int>(flat[1 + 3 * i]), flat[2 + 3 * i], flat[3 + 3 * i]});
  }
  for (size_t j = 1 + 3 * sends; j + 1 < flat.size(); j += 2) ex.recvs.push_back({static_cast<int>(flat[j]), flat[j + 1]});
  return ex;
}

struct ExchangeRows : torch::autograd::Function<ExchangeRows> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* comm, const RowExchange* ex) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["phase"] = static_cast<int64_t>(PhaseTimers::current_phase());
    ctx->saved_data["exchange"] = flatten(*ex);
    ctx->saved_data["shape"] = x.sizes().vec();
    return run_exchange(x, *comm, *ex);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    ScopedPhase timed(saved_phase(ctx));
    const RowExchange ex = unflatten(ctx->saved_data["exchange"].toIntVector());
    at::Tensor grad_x = reverse_exchange(grads[0].contiguous(), *comm_of(ctx), ex,
                                         ctx->saved_data["shape"].toIntVector());
    return {grad_x, at::Tensor(), at::Tensor()};
  }
};

struct AllToAllRows : torch::autograd::Function<AllToAllRows> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* comm,
                            std::vector<int64_t> send_counts, std::vector<int64_t> recv_counts) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["phase"] = static_cast<int64_t>(PhaseTimers::current_phase());
    ctx->saved_data["send"] = send_counts;
    ctx->saved_data["recv"] = recv_counts;
    return run_all_to_all(x, *comm, send_counts, recv_counts);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    ScopedPhase timed(saved_phase(ctx));
    at::Tensor grad_x = run_all_to_all(grads[0], *comm_of(ctx), ctx->saved_data["recv"].toIntVector(),
                                       ctx->saved_data["send"].toIntVector());
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

int64_t RowExchange::received_rows() const {
  int64_t n = 0;
  for (const RowRecv& r : recvs) n += r.count;
  return n;
}

at::Tensor all_gather_rows(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& counts) {
  GSA_CHECK(static_cast<int>(counts.size()) == comm.size(), "all_gather_rows: ", counts.size(), " counts for ",
            comm.size(), " ranks");
  GSA_CHECK(x.dim() >= 1 && x.size(0) == counts[comm.rank()], "all_gather_rows: rank ", comm.rank(), " has ",
            x.size(0), " rows, counts say ", counts[comm.rank()]);
  return AllGatherRows::apply(x, &comm, counts);
}

at::Tensor exchange_rows(const at::Tensor& x, Communicator& comm, const RowExchange& exchange) {
  for (const RowSend& s : exchange.sends) {
    GSA_CHECK(s.begin >= 0 && s.count >= 0 && s.begin + s.count <= x.size(0), "exchange_rows: rows [", s.begin, ", ",
              s.begin + s.count, ") outside the ", x.size(0), " rows of x");
  }
  return ExchangeRows::apply(x, &comm, &exchange);
}

at::Tensor all_to_all_rows(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts) {
  GSA_CHECK(static_cast<int>(send_counts.size()) == comm.size() && static_cast<int>(recv_counts.size()) == comm.size(),
            "all_to_all_rows: counts must have one entry per rank (", comm.size(), ")");
  GSA_CHECK(x.size(0) == sum(send_counts), "all_to_all_rows: ", x.size(0), " rows, send counts sum to ",
            sum(send_counts));
  return AllToAllRows::apply(x, &comm, send_counts, recv_counts);
}

}  // namespace gsa
