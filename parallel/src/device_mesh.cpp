#include "gsa/parallel/device_mesh.h"

#include "gsa/runtime/error.h"

namespace gsa {

std::string DeviceMesh::describe() const {
  return str_cat("rank ", rank, "/", world_size, " (dp ", dp_rank(), "/", dp, ", sp ", sp_rank(), "/", sp, ")");
}

DeviceMesh DeviceMesh::create(int64_t world_size, int64_t rank, int64_t dp, int64_t sp) {
  GSA_CHECK(dp >= 1 && sp >= 1, "mesh sizes must be >= 1, got dp ", dp, " x sp ", sp);
  GSA_CHECK(world_size == dp * sp, "world size ", world_size, " != dp ", dp, " x sp ", sp, " (= ", dp * sp, ")");
  GSA_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " outside world size ", world_size);
  DeviceMesh mesh;
  mesh.world_size = world_size;
  mesh.rank = rank;
  mesh.dp = dp;
  mesh.sp = sp;
  return mesh;
}

}  // namespace gsa
