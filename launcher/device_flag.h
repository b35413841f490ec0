// --device and --threads handling shared by the subcommands that run a model.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "cli_flags.h"

namespace gsa::cli {

// --device cpu|cuda|cuda:N (default cpu); fails clearly when CUDA is asked for and absent.
// --threads N sets LibTorch's intra-op threads (default: LibTorch's choice).
at::Device device_from_flags(Flags& flags);

}  // namespace gsa::cli
