// gsa: the command-line entry point. Subcommands live in one file each (cmd_*.cpp) and register in
// commands.h; this file only dispatches and turns errors into a message and a non-zero exit.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"

namespace {

// CPU attention allocates and frees temporaries of hundreds of MiB per run of queries; glibc serves each from a
// fresh mmap, so every one is page-faulted in again (a 75K-token prefill of the demo model spent half its time in
// the kernel: 110 s -> 41 s with this, 2.5 -> 4.8 GiB peak RSS). Keep them in the heap and do not trim it,
// unless the user chose otherwise through glibc's own variables.
void keep_large_allocations_in_the_heap() {
  if (std::getenv("MALLOC_MMAP_MAX_") == nullptr) mallopt(M_MMAP_MAX, 0);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, -1);  // -1: never trim
}

}  // namespace

int main(int argc, char** argv) {
  keep_large_allocations_in_the_heap();
  // Progress reaches a pipe or a log file line by line, not in 4 KiB blocks.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(gsa::cli::top_level_help().c_str(), stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    return gsa::cli::run_command(command, args);
  } catch (const std::exception& e) {
    // Messages raised by the flag parser already name the command ("gsa generate: --seed ..."): say it once.
    std::string message = e.what();
    const std::string own_prefix = "gsa " + command + ": ";
    if (message.compare(0, own_prefix.size(), own_prefix) == 0) message.erase(0, own_prefix.size());
    std::fprintf(stderr, "gsa %s: error: %s\n", command.c_str(), message.c_str());
    return 1;
  }
}
