// gsa serve: the OpenAI-compatible HTTP server over a checkpoint; under mpirun every rank runs the serving engine
// in lockstep (the KV cache of each request sharded over them) and rank 0 answers HTTP.
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "mpi_launch.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/serve/http_server.h"
#include "gsa/serve/inference_engine.h"
#include "gsa/serve/request_handler.h"
#include "gsa/serve/serving_engine.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa serve --checkpoint DIR [--config F.pbtxt] [--set a.b=v ...] [--host 127.0.0.1] [--port 8000]\n"
    "                 [--api-key TOKEN] [--model-name gsa] [--device cpu|cuda]\n"
    "\n"
    "OpenAI-compatible HTTP/1.1 server: POST /v1/completions, POST /v1/chat/completions (stream: true gives\n"
    "server-sent events), GET /v1/models, GET /health, GET /metrics (Prometheus). The request field \"context\"\n"
    "(a gsa extension) is gisted, \"prompt\" is the raw suffix, as gsa generate --context/--prompt.\n"
    "--checkpoint: as gsa generate. --config/--set: attention options for serving (selection budget ...); the\n"
    "model and the gist layout always come from the checkpoint. --api-key: require 'Authorization: Bearer TOKEN'\n"
    "on /v1/*. SIGTERM or SIGINT: stop accepting, finish every queued and running request, exit 0.\n"
    "\n"
    "limits:  --max-queue N (64)  --max-running N (16, decoded together)  --prefill-chunk N (256 positions)\n"
    "         --kv-budget-mb N (1024: admission control; a request that can never fit gets 503)\n"
    "         --max-prompt-tokens N (1048576)  --max-body-bytes N (8388608)  --max-header-bytes N (16384)\n"
    "         --read-timeout-ms N (10000: slow requests get 408)  --write-timeout-ms N (30000)\n"
    "\n"
    "Sharded: under mpirun all ranks form one sp group; each request's prompt is cut over them, rank 0 answers.\n"
    "  mpirun -np 2 gsa serve --checkpoint D --port 8000   --backend mpi|nccl   --comm-timeout-s S (default 300)\n";

int64_t positive(Flags& flags, const std::string& name, int64_t fallback) {
  const int64_t v = flags.get_int(name, fallback);
  GSA_CHECK(v >= 1, "gsa serve: --", name, " must be >= 1, got ", v);
  return v;
}

}  // namespace

int run_serve(const Args& args) {
  Flags flags(args, "serve");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string checkpoint = flags.require_string("checkpoint");
  const std::string config = flags.get_string("config", "");
  const std::vector<std::string> sets = flags.get_all("set");
  GSA_CHECK(sets.empty() || !config.empty(), "gsa serve: --set needs --config");
  serve::ServerOptions server;
  server.host = flags.get_string("host", server.host);
  server.port = static_cast<int>(flags.get_int("port", server.port));
  server.max_header_bytes = positive(flags, "max-header-bytes", server.max_header_bytes);
  server.max_body_bytes = positive(flags, "max-body-bytes", server.max_body_bytes);
  server.read_timeout = std::chrono::milliseconds(positive(flags, "read-timeout-ms", server.read_timeout.count()));
  server.write_timeout = std::chrono::milliseconds(positive(flags, "write-timeout-ms", server.write_timeout.count()));
  serve::HandlerOptions handler_options;
  handler_options.api_key = flags.get_string("api-key", "");
  handler_options.model_name = flags.get_string("model-name", handler_options.model_name);
  GSA_CHECK(!handler_options.model_name.empty(), "gsa serve: --model-name must not be empty");
  handler_options.max_prompt_tokens = positive(flags, "max-prompt-tokens", handler_options.max_prompt_tokens);
  serve::EngineOptions engine_options;
  engine_options.max_queue = positive(flags, "max-queue", engine_options.max_queue);
  engine_options.max_running = positive(flags, "max-running", engine_options.max_running);
  engine_options.prefill_chunk = positive(flags, "prefill-chunk", engine_options.prefill_chunk);
  const int64_t budget_mb = positive(flags, "kv-budget-mb", 1024);
  GSA_CHECK(budget_mb <= (int64_t{1} << 40), "gsa serve: --kv-budget-mb ", budget_mb, " is too large");
  engine_options.kv_budget_bytes = budget_mb << 20;
  const at::Device device = device_from_flags(flags);
  const bool distributed = launched_by_mpirun();
  const CommFlags comm = read_comm_flags(flags, "comm-timeout-s", 300);
  flags.finish();

  auto serve_on = [&](const at::Device& on, Communicator* group) {
    GsaOptions options;
    LlamaModel model = load_checkpoint(checkpoint, on, &options);
    if (!config.empty()) options.attention = load_config_file(config, sets).attention;
    // The model's tokenizer: the checkpoint's tokenizer.json (gsa import) or data.tokenizer, else the byte one;
    // its construction refuses a tokenizer that does not fit the model.
    const std::shared_ptr<const ModelTokenizer> tokenizer = make_model_tokenizer(options);
    std::unique_ptr<serve::SequenceBackend> backend;
    if (group != nullptr && group->size() > 1) {
      backend = std::make_unique<serve::ShardedBackend>(model, options.attention, *group);
    } else {
      backend = std::make_unique<serve::LocalBackend>(model, options.attention);
    }
    engine_options.bytes_per_position = serve::kv_bytes_per_position(model.options());
    serve::ServeMetrics metrics;
    serve::ServingEngine engine(std::move(backend), options.gist, engine_options, &metrics, group, tokenizer);
    if (group != nullptr && group->rank() != 0) {
      // Rank 0 decides when to stop (its SIGTERM drains, then a shutdown step reaches every rank).
      std::signal(SIGTERM, SIG_IGN);
      std::signal(SIGINT, SIG_IGN);
      engine.run();
      return 0;
    }
    serve::RequestHandler handler(engine, metrics, handler_options);
    serve::HttpServer http(handler, server);
    http.start([&engine] { engine.drain(); });
    std::cout << "gsa serve: listening on http://" << server.host << ":" << http.port() << " (model '"
              << handler_options.model_name << "', " << (group ? group->size() : 1) << " rank(s), pid " << getpid()
              << ")" << std::endl;
    engine.run();
    http.stop(std::chrono::seconds(10));
    std::cout << "gsa serve: drained, exiting" << std::endl;
    return 0;
  };
  if (!distributed) return serve_on(device, nullptr);
  return run_mpi_job([&](const MpiSession& session) {
    ProcessGroups groups = make_process_groups(session, 1, session.world_size(), comm.backend, comm.timeout);
    return serve_on(groups.device, groups.sp.get());
  });
}

}  // namespace gsa::cli
