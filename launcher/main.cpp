// gsa: the command-line entry point. Subcommands live in one file each (cmd_*.cpp) and register in
// commands.h; this file only dispatches and turns errors into a message and a non-zero exit.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
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
    std::fprintf(stderr, "gsa %s: error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
