#include "gsa/serve/step_message.h"

#include "gsa/runtime/error.h"

namespace gsa::serve {
namespace {

void put_list(std::vector<int64_t>& out, const std::vector<int64_t>& list) {
  out.push_back(static_cast<int64_t>(list.size()));
  out.insert(out.end(), list.begin(), list.end());
}

class Reader {
 public:
  explicit Reader(const std::vector<int64_t>& flat) : flat_(flat) {}
  int64_t next() {
    GSA_CHECK(at_ < flat_.size(), "step message truncated at element ", at_);
    return flat_[at_++];
  }
  int64_t count() {
    const int64_t n = next();
    GSA_CHECK(n >= 0 && static_cast<size_t>(n) <= flat_.size() - at_, "step message: bad count ", n, " at element ",
              at_ - 1);
    return n;
  }
  std::vector<int64_t> list() {
    const int64_t n = count();
    std::vector<int64_t> out(flat_.begin() + at_, flat_.begin() + at_ + n);
    at_ += n;
    return out;
  }
  bool done() const { return at_ == flat_.size(); }

 private:
  const std::vector<int64_t>& flat_;
  size_t at_ = 0;
};

}  // namespace

std::vector<int64_t> encode_step(const StepMessage& m) {
  std::vector<int64_t> out{m.shutdown ? 1 : 0};
  put_list(out, m.remove);
  out.push_back(static_cast<int64_t>(m.add.size()));
  for (const StepMessage::Add& a : m.add) {
    out.push_back(a.id);
    out.push_back(a.max_positions);
    put_list(out, a.context);
    put_list(out, a.suffix);
  }
  out.push_back(static_cast<int64_t>(m.prefill.size()));
  for (const StepMessage::Prefill& p : m.prefill) {
    out.push_back(p.id);
    out.push_back(p.count);
  }
  out.push_back(static_cast<int64_t>(m.decode.size()));
  for (const auto& [id, token] : m.decode) {
    out.push_back(id);
    out.push_back(token);
  }
  return out;
}

StepMessage decode_step(const std::vector<int64_t>& flat) {
  Reader r(flat);
  StepMessage m;
  m.shutdown = r.next() != 0;
  m.remove = r.list();
  for (int64_t i = 0, n = r.count(); i < n; ++i) {
    StepMessage::Add a;
    a.id = r.next();
    a.max_positions = r.next();
    a.context = r.list();
    a.suffix = r.list();
    m.add.push_back(std::move(a));
  }
  for (int64_t i = 0, n = r.count(); i < n; ++i) {
    StepMessage::Prefill p;
    p.id = r.next();
    p.count = r.next();
    m.prefill.push_back(p);
  }
  for (int64_t i = 0, n = r.count(); i < n; ++i) {
    const int64_t id = r.next();
    m.decode.emplace_back(id, r.next());
  }
  GSA_CHECK(r.done(), "step message: ", flat.size(), " elements, trailing data after the decode list");
  return m;
}

StepMessage broadcast_step(const StepMessage& message, Communicator& group) {
  const auto opts = at::TensorOptions().dtype(at::kLong).device(group.device());
  const bool root = group.rank() == 0;
  std::vector<int64_t> flat = root ? encode_step(message) : std::vector<int64_t>{};
  at::Tensor size = at::full({1}, static_cast<int64_t>(flat.size()), opts);
  group.broadcast(size, 0);
  const int64_t n = size.item<int64_t>();
  at::Tensor payload = root ? at::tensor(flat, at::kLong).to(group.device()) : at::empty({n}, opts);
  group.broadcast(payload, 0);
  if (root) return message;
  payload = payload.cpu();
  const int64_t* data = payload.data_ptr<int64_t>();
  return decode_step(std::vector<int64_t>(data, data + n));
}

}  // namespace gsa::serve
