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
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
here=$(cd "$(dirname "$0")" && pwd)
py=${GSA_PYTHON:-python3}
"$py" -c 'import openai' 2>/dev/null || { echo "SKIP: the openai Python package is missing (scripts/setup.sh --tests)"; exit 77; }
dir=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$gsa" train --config "$tiny" --set train.steps=20 --set train.eval_batches=1 --samples 0 --threads 1 --output-dir "$dir/run" >/dev/null \
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

# Sampling edge cases of gsa generate: clear errors, no LibTorch backtraces.
for bad in "--temperature inf" "--temperature nan" "--top-p 0" "--top-p nan" "--max-new-tokens 0"; do
  if "$gsa" generate --checkpoint "$dir/run" --prompt x $bad >/dev/null 2>"$dir/bad.err" \
     || ! grep -q "must be" "$dir/bad.err" || grep -q "Exception raised from" "$dir/bad.err"; then
    echo "gsa generate $bad: expected a clear error, got:"; cat "$dir/bad.err"; exit 1
  fi
done
# A tiny top-p (below float precision) and INT64_MAX new tokens run: the KV cache grows as tokens come.
"$gsa" generate --checkpoint "$dir/run" --prompt x --temperature 1 --top-p 1e-50 --max-new-tokens 4 >/dev/null 2>&1 \
  || { echo "gsa generate --top-p 1e-50 failed"; exit 1; }
"$gsa" generate --checkpoint "$dir/run" --prompt x --max-new-tokens 9223372036854775807 2>/dev/null | head -c 20 \
  >/dev/null || { echo "gsa generate --max-new-tokens INT64_MAX failed"; exit 1; }
echo "gsa generate: sampling edge cases give clear errors; top-p 1e-50 and INT64_MAX new tokens run"

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

# gsa generate --server streams the same completion as gsa generate in local mode.
expected=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["text"])' "$dir/oracle.json")
got=$("$gsa" generate --server "http://127.0.0.1:$port" --api-key test-key --context "$context" --prompt "?k7=" \
        --max-new-tokens 8 2>"$dir/client.err")
if [ "$got" == "$expected" ]; then
  echo "gsa generate --server: the local completion ($(cat "$dir/client.err"))"
else
  echo "gsa generate --server printed '$got', local mode '$expected'"; cat "$dir/client.err"; status=1
fi
if "$gsa" generate --server "http://127.0.0.1:$port" --prompt x 2>"$dir/client.err" >/dev/null \
   || ! grep -q "401.*Authorization" "$dir/client.err"; then
  echo "gsa generate --server without the key: expected the server's 401 message, got:"; cat "$dir/client.err"; status=1
fi

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
