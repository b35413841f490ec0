#include "gsa/parallel/sequence_shard.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "gsa/runtime/error.h"

namespace gsa {

int64_t SequenceShards::owner(int64_t pos) const {
  GSA_CHECK(pos >= 0 && pos < length(), "position ", pos, " outside the sharded length ", length());
  return std::upper_bound(begin.begin(), begin.end(), pos) - begin.begin() - 1;
}

at::Tensor SequenceShards::owners(const at::Tensor& pos) const {
  at::Tensor bounds = at::tensor(std::vector<int64_t>(begin.begin() + 1, begin.end() - 1), pos.options());
  at::Tensor rank = at::bucketize(pos, bounds, /*out_int32=*/false, /*right=*/true);
  return rank.masked_fill(pos < 0, -1);
}

std::string SequenceShards::describe() const {
  std::string out;
  for (int64_t r = 0; r < num_shards(); ++r) out += str_cat(r ? " " : "", "[", begin[r], ", ", begin[r + 1], ")");
  return out;
}

int64_t padded_length(const std::vector<GistLayout>& rows) {
  int64_t t = 0;
  for (const GistLayout& row : rows) t = std::max(t, row.size());
  return t;
}

SequenceShards shards_from_boundaries(std::vector<int64_t> begin, int64_t length) {
  GSA_CHECK(begin.size() >= 2, "shard boundaries need at least [0, length]");
  GSA_CHECK(begin.front() == 0 && begin.back() == length, "shard boundaries must start at 0 and end at the row length ",
            length, ", got ", begin.front(), " .. ", begin.back());
  for (size_t i = 1; i < begin.size(); ++i) {
    GSA_CHECK(begin[i] > begin[i - 1], "shard ", i - 1, " is empty: boundaries ", begin[i - 1], ", ", begin[i],
              " (a row of ", length, " positions cannot feed ", begin.size() - 1, " ranks)");
  }
  return SequenceShards{std::move(begin)};
}

namespace {

// [T + 1] cumulative work of the batch's positions (summed over rows; positions past a row's end cost nothing).
std::vector<double> cumulative_work(const std::vector<GistLayout>& rows, int64_t length, const WorkModel& work) {
  std::vector<double> sum(length + 1, 0.0);
  for (const GistLayout& row : rows) {
    const std::vector<double> w = position_work(row, work);
    for (size_t t = 0; t < w.size(); ++t) sum[t + 1] += w[t];
  }
  for (int64_t t = 0; t < length; ++t) sum[t + 1] += sum[t];
  return sum;
}

// Cuts near the even split of the cumulative cost ([T + 1]; empty: every position costs the same): just after a
// top-level gist of the first row where one is within half a shard (in positions) of the split, else at the split.
SequenceShards cut_at_sections(const std::vector<GistLayout>& rows, int64_t sp, const std::vector<double>& cumulative) {
  GSA_CHECK(!rows.empty(), "cannot shard an empty batch");
  GSA_CHECK(sp >= 1, "cannot shard over sp ", sp, " ranks");
  const int64_t length = padded_length(rows);
  GSA_CHECK(length >= sp, "a row of ", length, " positions cannot be split over sp ", sp, " ranks");
  // Candidate cuts: just after each top-level gist of the first row.
  const GistLayout& row = rows.front();
  std::vector<int64_t> cuts;
  for (int64_t pos : row.gist_pos[row.levels() - 1]) {
    if (pos + 1 < length) cuts.push_back(pos + 1);
  }
  const bool uniform = cumulative.empty();
  std::vector<int64_t> begin{0};
  for (int64_t r = 1; r < sp; ++r) {
    // The first position where the work before it reaches r / sp of the total.
    const int64_t target =
        uniform ? length * r / sp
                : std::lower_bound(cumulative.begin(), cumulative.end(), cumulative.back() * r / sp) -
                      cumulative.begin();
    int64_t best = target;
    int64_t best_distance = length;
    for (int64_t c : cuts) {
      if (c > begin.back() && std::llabs(c - target) < best_distance) {
        best = c;
        best_distance = std::llabs(c - target);
      }
    }
    // Too far from the split (more than half a shard) or no section left: cut at the split.
    if (best_distance > length / (2 * sp)) best = std::max(target, begin.back() + 1);
    begin.push_back(best);
  }
  begin.push_back(length);
  for (size_t i = 1; i < begin.size(); ++i) begin[i] = std::max(begin[i], begin[i - 1] + 1);
  GSA_CHECK(begin.back() == length, "sharding ", length, " positions over ", sp, " ranks failed");
  return shards_from_boundaries(begin, length);
}

}  // namespace

SequenceShards shard_at_sections(const std::vector<GistLayout>& rows, int64_t sp) {
  return cut_at_sections(rows, sp, {});
}

SequenceShards shard_by_work(const std::vector<GistLayout>& rows, int64_t sp, const WorkModel& work) {
  GSA_CHECK(work.per_token >= 0 && work.per_key >= 0 && work.per_token + work.per_key > 0,
            "shard_by_work: the work model needs per_token, per_key >= 0, not both 0 (got ", work.per_token, ", ",
            work.per_key, ")");
  if (work.per_key == 0) return shard_at_sections(rows, sp);  // uniform work: the even cut
  return cut_at_sections(rows, sp, cumulative_work(rows, padded_length(rows), work));
}

SequenceShards shard_by_measured_cost(const std::vector<GistLayout>& rows, int64_t sp, const SequenceShards& measured,
                                      const std::vector<double>& busy_ms) {
  GSA_CHECK(static_cast<int64_t>(busy_ms.size()) == measured.num_shards(), "shard_by_measured_cost: ",
            busy_ms.size(), " times for ", measured.num_shards(), " measured shards");
  GSA_CHECK(measured.length() == padded_length(rows), "shard_by_measured_cost: the measured cut covers ",
            measured.length(), " positions, the rows ", padded_length(rows));
  double total = 0;
  for (double ms : busy_ms) {
    GSA_CHECK(ms >= 0 && std::isfinite(ms), "shard_by_measured_cost: a measured time is ", ms);
    total += ms;
  }
  if (total <= 0) return shard_at_sections(rows, sp);
  std::vector<double> cumulative{0.0};  // [T + 1]: busy_ms[r] / shard_size(r) per position of shard r
  for (int64_t r = 0; r < measured.num_shards(); ++r) {
    const double per_position = busy_ms[static_cast<size_t>(r)] / static_cast<double>(measured.shard_size(r));
    for (int64_t t = 0; t < measured.shard_size(r); ++t) cumulative.push_back(cumulative.back() + per_position);
  }
  return cut_at_sections(rows, sp, cumulative);
}

WorkModel work_model_of(const ModelOptions& m) {
  const double q = static_cast<double>(m.num_heads * m.head_dim), kv = static_cast<double>(m.num_kv_heads * m.head_dim);
  const double h = static_cast<double>(m.hidden_size), inter = static_cast<double>(m.intermediate_size);
  return WorkModel{h * (2 * q + 2 * kv) + 3 * h * inter, 2 * q};
}

WorkModel placement_work_model(const ModelOptions& m, at::DeviceType device) {
  constexpr double kCudaKeyWeight = 1.0, kCpuKeyWeight = 0.0;  // see the header for the measurement behind each
  WorkModel work = work_model_of(m);
  work.per_key *= device == at::kCUDA ? kCudaKeyWeight : kCpuKeyWeight;
  return work;
}

std::vector<double> position_work(const GistLayout& row, const WorkModel& work) {
  const int64_t levels = row.levels();
  std::vector<double> out(static_cast<size_t>(row.size()));
  std::vector<int64_t> frontier(static_cast<size_t>(levels), 0);  // visible gists per level
  int64_t sinks = 0;
  for (int64_t t = 0; t < row.size(); ++t) {
    if (t == row.doc_start[row.doc[t]]) {
      std::fill(frontier.begin(), frontier.end(), 0);
      sinks = 0;
    }
    if (row.sink[t] != 0) ++sinks;
    if (row.is_gist(t)) {
      const int64_t l = row.level[t];
      ++frontier[static_cast<size_t>(l)];
      for (int64_t below = 0; below < l; ++below) frontier[static_cast<size_t>(below)] = 0;  // now summarised
    }
    int64_t keys = sinks + (t - local_window_start(row, t) + 1);
    for (int64_t n : frontier) keys += n;
    out[static_cast<size_t>(t)] = work.per_token + work.per_key * static_cast<double>(keys);
  }
  return out;
}

std::vector<double> shard_work(const std::vector<GistLayout>& rows, const SequenceShards& shards,
                               const WorkModel& work) {
  const std::vector<double> cumulative = cumulative_work(rows, shards.length(), work);
  std::vector<double> out;
  for (int64_t r = 0; r < shards.num_shards(); ++r) {
    out.push_back(cumulative[shards.shard_begin(r + 1)] - cumulative[shards.shard_begin(r)]);
  }
  return out;
}

}  // namespace gsa
