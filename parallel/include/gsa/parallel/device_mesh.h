// The device mesh: world = dp x sp, sp innermost (DESIGN.md section 5). Rank r has sp_rank = r % sp and
// dp_rank = r / sp, so the ranks of one sp group are consecutive (inside a node when possible).
//
// Contract: DeviceMesh::create validates the sizes at start and throws gsa::Error naming every factor
// ("world size 6 != dp 4 x sp 2") when they do not multiply to the world size or one is < 1.
#pragma once

#include <cstdint>
#include <string>

namespace gsa {

struct DeviceMesh {
  int64_t world_size = 1;
  int64_t rank = 0;
  int64_t dp = 1;  // data-parallel replicas
  int64_t sp = 1;  // sequence-parallel shards per replica

  int64_t sp_rank() const { return rank % sp; }
  int64_t dp_rank() const { return rank / sp; }
  std::string describe() const;

  static DeviceMesh create(int64_t world_size, int64_t rank, int64_t dp, int64_t sp);
};

}  // namespace gsa
