#!/usr/bin/env bash
# test_serve.sh GSA MPIEXEC [MPIEXEC_FLAGS...]: trains a small checkpoint, computes greedy completions with
# `gsa generate` in local mode (the oracle), then runs `mpirun -np 2 gsa serve` and drives it with the official
# `openai` Python client (serve_client.py): concurrent clients (plain, streamed, chat, some disconnecting early)
# must get exactly the oracle's completions; a fixed seed must sample the same text alone and under load; every
# malformed request gets a 4xx OpenAI error and the server keeps serving; SIGTERM during a request lets it finish
# and every rank exits 0. Exits 77 (skipped) when the openai package is missing.
set -u
gsa=$1 mpiexec=$2
shift 2
export OMP_NUM_THREADS=1
here=$(cd "$(dirname "$0")" && pwd)
py=${GSA_PYTHON:-python3}
"$py" -c 'import openai' 2>/dev/null || { echo "SKIP: the openai Python package is missing (scripts/setup.sh --tests)"; exit 77; }
dir=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$gsa" train --set train.steps=20 --set train.eval_batches=1 --samples 0 --threads 1 --output-dir "$dir/run" >/dev/null \
  || { echo "training the checkpoint failed"; exit 1; }

# The oracle: gsa generate, one process, greedy. A chat renders as prompt "user: X\nassistant: " (api_codec.h).
context="k3=v9 k7=v2 k1=v5 alpha beta gamma delta epsilon zeta eta theta"
"$py" - "$gsa" "$dir/run" "$context" > "$dir/oracle.json" <<'PY' || { echo "gsa generate (the oracle) failed"; exit 1; }
import json, subprocess, sys
gsa, ckpt, context = sys.argv[1:4]
cases = [dict(context=context, prompt="?k7=", chat=False), dict(context=context * 2, prompt="?k1=", chat=False),
         dict(context="", prompt="hello there", chat=False), dict(context="", prompt="user: hi\nassistant: ", chat=True,
                                                                   user="hi")]
cases.append(dict(cases[0], max_tokens=48))  # the last one: in flight during SIGTERM
for c in cases:
    c.setdefault("max_tokens", 8)
    out = subprocess.run([gsa, "generate", "--checkpoint", ckpt, "--context", c["context"], "--prompt", c["prompt"],
                          "--max-new-tokens", str(c["max_tokens"])], check=True, capture_output=True).stdout
    assert out.endswith(b"\n")
    c["text"] = out[:-1].decode("utf-8", "replace")
print(json.dumps(cases))
PY

start_server() {
  "$mpiexec" -np 2 "$@" -x OMP_NUM_THREADS "$gsa" serve --checkpoint "$dir/run" --port 0 --backend mpi \
    --api-key test-key --max-prompt-tokens 4096 --max-body-bytes 65536 --read-timeout-ms 1500 \
    --max-running 16 >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$dir/server.log" | grep -o '[0-9]*$')
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "gsa serve died:"; cat "$dir/server.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "gsa serve did not start:"; cat "$dir/server.log"; exit 1; }
  rank0=$(grep -o 'pid [0-9]*' "$dir/server.log" | grep -o '[0-9]*$')
}
start_server "$@"
echo "gsa serve on 2 ranks, port $port"
status=0
timeout 240 "$py" "$here/serve_client.py" "$port" test-key "$dir/oracle.json" load || status=1

# SIGTERM to rank 0 while a request is in flight: it completes, then every rank exits 0.
timeout 120 "$py" "$here/serve_client.py" "$port" test-key "$dir/oracle.json" drain "$rank0" || status=1
timeout 60 tail --pid="$server_pid" -f /dev/null
wait "$server_pid"
rc=$?
server_pid=
if [ $rc -ne 0 ] || ! grep -q "drained, exiting" "$dir/server.log"; then
  echo "gsa serve did not drain and exit 0 after SIGTERM (exit $rc):"; cat "$dir/server.log"; status=1
else
  echo "SIGTERM: drained and exited 0"
fi
exit $status
