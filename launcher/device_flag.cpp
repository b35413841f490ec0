#include "device_flag.h"

#include <ATen/Parallel.h>

#include "gsa/runtime/error.h"

namespace gsa::cli {

at::Device device_from_flags(Flags& flags) {
  const int64_t threads = flags.get_int("threads", 0);
  GSA_CHECK(threads >= 0, "--threads must be >= 0, got ", threads);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  const std::string name = flags.get_string("device", "cpu");
  if (name == "cpu") return at::kCPU;
  GSA_CHECK(name.rfind("cuda", 0) == 0, "--device must be cpu, cuda or cuda:N, got '", name, "'");
  GSA_CHECK(at::hasCUDA(), "--device ", name, ": this machine has no CUDA device");
  return at::Device(name);
}

}  // namespace gsa::cli
