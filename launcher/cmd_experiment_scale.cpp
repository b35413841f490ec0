// gsa experiment scale --spec FILE.pbtxt --out DIR: a scaling experiment. Every point of the spec's grid
// (configs/proto/scale_spec.proto, expand_scale_points) runs as its own mpirun job through gsarun (one rank per
// GPU, or CPU processes): `gsa bench step` with the point's mode, rank count, context and placement.
//
// DIR layout:
//   points/<id>/command.txt   the job's command line (one argument per line)
//   points/<id>/log.txt       its stdout and stderr
//   points/<id>/ranks.csv     its rows, one per rank (scale_columns.h): present only when the job finished and
//                             its CSV checked out (written as ranks.csv.partial, renamed at the end)
//   results.csv               every finished point's rows, prefixed by the point columns, in spec order
//   spec.pbtxt                the spec this run used
// Resumable: a point whose ranks.csv exists is kept (not run again) when its command is the same; a point
// folder without ranks.csv (a job that failed or was interrupted) is cleared and run again. A kept point whose
// command differs (the spec changed under the same DIR) is an error naming it. A failed point does not stop the
// others; the exit code is 1 when any point failed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "scale_columns.h"
#include "gsa/config/scale_spec.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: gsa experiment scale --spec FILE.pbtxt --out DIR [flags]\n"
    "\n"
    "Runs every point of a scaling spec (ranks x contexts x modes) as an mpirun job through gsarun, with the\n"
    "per-rank breakdown of gsa bench step; keeps finished points in DIR (a rerun skips them) and writes\n"
    "DIR/results.csv. Plots: python3 scripts/plot_results.py --run DIR; cost model: scripts/cost_model.py.\n"
    "\n"
    "flags:\n"
    "  --spec FILE      the grid (schema: configs/proto/scale_spec.proto; configs/scale/cpu.pbtxt, gpu.pbtxt)\n"
    "  --out DIR        the run directory (created; reused to resume)\n"
    "  --gsarun PATH    the launcher (default: gsarun next to this gsa binary)\n"
    "  --dry-run        print each point's command, run nothing\n";

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  GSA_CHECK(n > 0, "gsa experiment scale: cannot find this program's path (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  GSA_CHECK(::getcwd(cwd, sizeof(cwd)) != nullptr, "gsa experiment scale: cannot read the working directory");
  return std::string(cwd) + "/" + path;
}

std::vector<std::string> point_command(const ScaleSpec& spec, const ScalePoint& p, const std::string& gsarun,
                                       const std::string& gsa, const std::string& csv) {
  const ScaleLaunchSpec& l = spec.launch;
  std::vector<std::string> cmd{gsarun};
  if (!l.hostfile.empty()) cmd.insert(cmd.end(), {"--hostfile", absolute(l.hostfile)});
  if (l.gpus_per_node >= 0) cmd.insert(cmd.end(), {"--gpus-per-node", std::to_string(l.gpus_per_node)});
  if (l.oversubscribe) cmd.push_back("--oversubscribe");
  if (l.allow_run_as_root) cmd.push_back("--allow-run-as-root");
  for (const std::string& a : l.mpirun_args) cmd.insert(cmd.end(), {"--mpirun-arg", a});
  cmd.insert(cmd.end(), {"-np", std::to_string(p.ranks), "--gsa", gsa, "--", "bench", "step"});
  cmd.insert(cmd.end(), {"--mode", p.kind == ScaleKind::kServe ? "serve" : "train", "--tokens",
                         std::to_string(p.tokens), "--batch", std::to_string(p.batch), "--suffix",
                         std::to_string(spec.suffix), "--placement", scale_placement_name(p.placement), "--warmup",
                         std::to_string(spec.warmup), "--repeats", std::to_string(spec.repeats), "--backend",
                         l.backend, "--timeout-s", std::to_string(l.timeout_s)});
  if (p.kind == ScaleKind::kServe) cmd.insert(cmd.end(), {"--decode-tokens", std::to_string(p.decode_tokens)});
  if (!spec.config.empty()) cmd.insert(cmd.end(), {"--config", absolute(spec.config)});
  for (const std::string& o : spec.overrides) cmd.insert(cmd.end(), {"--set", o});
  cmd.insert(cmd.end(), {"--csv", csv});
  return cmd;
}

std::string joined(const std::vector<std::string>& cmd, const char* sep) {
  std::string out;
  for (const std::string& a : cmd) out += (out.empty() ? "" : sep) + a;
  return out;
}

// Runs cmd with stdout and stderr to log_path, in this process group (Ctrl-C reaches mpirun and the ranks too).
// After timeout_s it sends SIGTERM (gsarun stops its mpirun job), then SIGKILL 10 s later. Returns the exit code
// (128 + signal when killed).
int run_logged(const std::vector<std::string>& cmd, const std::string& log_path, int64_t timeout_s) {
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
  for (const std::string& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  GSA_CHECK(log >= 0, "gsa experiment scale: cannot write ", log_path);
  const pid_t child = ::fork();
  GSA_CHECK(child >= 0, "gsa experiment scale: fork failed");
  if (child == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(argv[0], argv.data());
    static const char kMessage[] = "gsa experiment scale: cannot execute the launcher\n";
    (void)!::write(2, kMessage, sizeof(kMessage) - 1);
    ::_exit(127);
  }
  ::close(log);
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  bool terminated = false;
  while (::waitpid(child, &status, WNOHANG) != child) {
    const auto waited = std::chrono::steady_clock::now() - start;
    if (!terminated && waited > std::chrono::seconds(timeout_s)) {
      ::kill(child, SIGTERM);
      terminated = true;
    } else if (terminated && waited > std::chrono::seconds(timeout_s + 10)) {
      ::kill(child, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (terminated) return 128 + SIGTERM;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// A point's CSV is complete: the rank header and one row per rank, in rank order. Returns "" or the problem.
std::string check_rank_csv(const std::string& path, int64_t ranks) {
  const std::vector<std::string> lines = lines_of(read_file(path));
  if (lines.empty() || lines[0] != kRankColumns) return "its header is not gsa bench step's columns";
  if (static_cast<int64_t>(lines.size()) != ranks + 1) {
    return str_cat(lines.size() - 1, " rows for ", ranks, " ranks");
  }
  return "";
}

}  // namespace

int run_experiment(const Args& args) {
  const std::string what = Flags::leading_word(args);
  Flags flags(args, what.empty() ? "experiment" : "experiment " + what);
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  GSA_CHECK(what == "scale", "expected 'gsa experiment scale' (positional word before flags)\n", kHelp);
  const std::string spec_path = flags.require_string("spec");
  const std::string out = absolute(flags.require_string("out"));
  const std::string gsa = self_path();
  const std::string gsarun = flags.get_string("gsarun", gsa.substr(0, gsa.rfind('/')) + "/gsarun");
  const bool dry_run = flags.get_bool("dry-run", false);
  flags.finish();
  const ScaleSpec spec = load_scale_spec(spec_path);
  GSA_CHECK(::access(gsarun.c_str(), X_OK) == 0, "gsa experiment scale: the launcher ", gsarun,
            " is not an executable (--gsarun)");
  const std::vector<ScalePoint> points = expand_scale_points(spec);

  if (!dry_run) {
    make_directories(join_path(out, "points"));
    write_file_atomic(join_path(out, "spec.pbtxt"), read_file(spec_path));
  }
  std::printf("gsa experiment scale: %s, %zu points, into %s\n", spec.name.c_str(), points.size(), out.c_str());
  std::vector<std::string> failed;
  std::string results = std::string(kPointColumns) + "," + kRankColumns + "\n";
  for (size_t i = 0; i < points.size(); ++i) {
    const ScalePoint& p = points[i];
    const std::string dir = join_path(join_path(out, "points"), p.id);
    const std::string csv = join_path(dir, "ranks.csv"), partial = csv + ".partial";
    const std::vector<std::string> cmd = point_command(spec, p, gsarun, gsa, partial);
    const std::string command_text = joined(cmd, "\n") + "\n";
    const std::string label = str_cat("[", i + 1, "/", points.size(), "] ", p.id);
    if (dry_run) {
      std::printf("%s: %s\n", label.c_str(), joined(cmd, " ").c_str());
      continue;
    }
    if (path_exists(csv)) {
      const std::string command_file = join_path(dir, "command.txt");
      GSA_CHECK(path_exists(command_file) && read_file(command_file) == command_text, "gsa experiment scale: point ",
                p.id, " in ", dir, " was measured with a different command (the spec changed?): use another --out, "
                "or delete that folder to measure it again");
      const std::string problem = check_rank_csv(csv, p.ranks);
      GSA_CHECK(problem.empty(), "gsa experiment scale: the kept point ", csv, " is damaged (", problem,
                "): delete its folder to measure it again");
      std::printf("%s: kept (finished earlier)\n", label.c_str());
    } else {
      remove_tree(dir);  // a partial run: start over
      make_directories(dir);
      write_file_atomic(join_path(dir, "command.txt"), command_text);
      std::printf("%s: running %lld rank(s)...\n", label.c_str(), static_cast<long long>(p.ranks));
      std::fflush(stdout);
      const auto start = std::chrono::steady_clock::now();
      const int rc = run_logged(cmd, join_path(dir, "log.txt"), 2 * spec.launch.timeout_s);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string problem = rc != 0 ? str_cat("exit code ", rc)
                            : !path_exists(partial) ? std::string("no CSV written")
                                                    : check_rank_csv(partial, p.ranks);
      if (!problem.empty()) {
        std::printf("%s: FAILED (%s, %.1f s); see %s\n", label.c_str(), problem.c_str(), seconds,
                    join_path(dir, "log.txt").c_str());
        failed.push_back(p.id);
        continue;
      }
      rename_path(partial, csv);
      std::printf("%s: done in %.1f s\n", label.c_str(), seconds);
    }
    std::fflush(stdout);
    const std::vector<std::string> lines = lines_of(read_file(csv));
    for (size_t r = 1; r < lines.size(); ++r) {
      results += str_cat(p.id, ",", p.series, ",", scale_kind_name(p.kind), ",", lines[r], "\n");
    }
  }
  if (dry_run) return 0;
  write_file_atomic(join_path(out, "results.csv"), results);
  std::printf("results: %s (%zu of %zu points)\n", join_path(out, "results.csv").c_str(), points.size() - failed.size(),
              points.size());
  if (!failed.empty()) {
    std::printf("failed points (rerun the same command to retry them): %s\n", joined(failed, ", ").c_str());
    return 1;
  }
  return 0;
}

}  // namespace gsa::cli
