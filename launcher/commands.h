// The subcommands of the gsa CLI. Each run_* takes the arguments after its name and returns the exit code;
// bad arguments throw gsa::Error with a message that names the flag.
#pragma once

#include <string>
#include <vector>

namespace gsa::cli {

std::string top_level_help();
int run_command(const std::string& command, const std::vector<std::string>& args);

}  // namespace gsa::cli
