#include "mpi_launch.h"

#include <cstdlib>

namespace gsa::cli {

bool launched_by_mpirun() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size == nullptr) size = std::getenv("PMI_SIZE");
  return size != nullptr && std::atoi(size) > 1;
}

}  // namespace gsa::cli
