#include "gsa/parallel/sequence_shard.h"

#include <algorithm>
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

SequenceShards shard_at_sections(const std::vector<GistLayout>& rows, int64_t sp) {
  GSA_CHECK(!rows.empty(), "cannot shard an empty batch");
  const int64_t length = padded_length(rows);
  GSA_CHECK(length >= sp, "a row of ", length, " positions cannot be split over sp ", sp, " ranks");
  // Candidate cuts: just after each top-level gist of the first row.
  const GistLayout& row = rows.front();
  std::vector<int64_t> cuts;
  for (int64_t pos : row.gist_pos[row.levels() - 1]) {
    if (pos + 1 < length) cuts.push_back(pos + 1);
  }
  std::vector<int64_t> begin{0};
  for (int64_t r = 1; r < sp; ++r) {
    const int64_t target = length * r / sp;
    int64_t best = target;
    int64_t best_distance = length;
    for (int64_t c : cuts) {
      if (c > begin.back() && std::llabs(c - target) < best_distance) {
        best = c;
        best_distance = std::llabs(c - target);
      }
    }
    // Too far from the even split (more than half a shard) or no section left: cut evenly.
    if (best_distance > length / (2 * sp)) best = std::max(target, begin.back() + 1);
    begin.push_back(best);
  }
  begin.push_back(length);
  for (size_t i = 1; i < begin.size(); ++i) begin[i] = std::max(begin[i], begin[i - 1] + 1);
  GSA_CHECK(begin.back() == length, "sharding ", length, " positions over ", sp, " ranks failed");
  return shards_from_boundaries(begin, length);
}

}  // namespace gsa
