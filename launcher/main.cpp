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
    // Messages that already name the command ("gsa generate: --seed ...", "gsa inspect layout: --chunk ...") keep
    // that name, said once: "gsa inspect layout: error: --chunk ...".
    std::string who = "gsa " + command, message = e.what();
    const size_t colon = message.find(": ");
    if (message.compare(0, who.size(), who) == 0 && colon != std::string::npos &&
        (message.size() == who.size() || message[who.size()] == ':' || message[who.size()] == ' ')) {
      who = message.substr(0, colon);
      message.erase(0, colon + 2);
    }
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), message.c_str());
    return 1;
  }
}
