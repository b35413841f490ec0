// The subcommands of the gsa CLI, one file each (cmd_<name>.cpp). Each run_* takes the arguments after its
// name and returns the exit code; bad arguments throw gsa::Error with a message that names the flag.
#pragma once

#include <string>
#include <vector>

namespace gsa::cli {

using Args = std::vector<std::string>;

std::string top_level_help();
int run_command(const std::string& command, const Args& args);

int run_train(const Args& args);     // cmd_train.cpp
int run_generate(const Args& args);  // cmd_generate.cpp
int run_eval(const Args& args);      // cmd_eval.cpp
int run_serve(const Args& args);     // cmd_serve.cpp
int run_inspect(const Args& args);   // cmd_inspect.cpp
int run_tokenize(const Args& args);  // cmd_tokenize.cpp
int run_import(const Args& args);    // cmd_hf.cpp
int run_export(const Args& args);    // cmd_hf.cpp
int run_bench(const Args& args);     // cmd_bench.cpp
int run_bench_comm(const Args& args);  // cmd_bench_comm.cpp (gsa bench comm, under mpirun)
int run_bench_sp(const Args& args);    // cmd_bench_sp.cpp (gsa bench sp, under mpirun)
int run_bench_kernels(const Args& args);  // cmd_bench_kernels.cpp (gsa bench kernels, one GPU)
int run_bench_decode(const Args& args);   // cmd_bench_decode.cpp (gsa bench decode, one GPU)
int run_bench_serve(const Args& args);    // cmd_bench_serve.cpp (gsa bench serve, one device)
int run_bench_train(const Args& args);    // cmd_bench_train.cpp (gsa bench train, GSA vs dense training steps)
int run_bench_step(const Args& args);     // cmd_bench_step.cpp (gsa bench step, one scaling point, under mpirun)
int run_experiment(const Args& args);     // cmd_experiment_scale.cpp (gsa experiment scale)

}  // namespace gsa::cli
