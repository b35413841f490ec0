// How the CLI knows it runs as one rank of an mpirun job (then train / generate / bench comm join the job).
#pragma once

namespace gsa::cli {

// True when the launcher (Open MPI's OMPI_COMM_WORLD_SIZE, or a PMI launcher's PMI_SIZE) started more than one
// process.
bool launched_by_mpirun();

}  // namespace gsa::cli
