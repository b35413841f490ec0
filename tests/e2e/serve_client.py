"""Client side of test_serve.sh: drives a running `gsa serve` with the official `openai` Python client (the
independent oracle client) and raw HTTP for malformed input; compares every greedy completion with the
`gsa generate` outputs in oracle.json. Exits non-zero with a message naming the first failure.

usage: serve_client.py PORT API_KEY ORACLE_JSON load | drain RANK0_PID
"""
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time

import openai

port, api_key, oracle_path, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
oracle = json.load(open(oracle_path))  # [{"context", "prompt", "chat", "max_tokens", "text"}]
client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key, max_retries=0, timeout=120)
failures = []


def fail(message):
    failures.append(message)
    print("FAIL:", message, flush=True)


def complete(case, stream=False, seed=None, temperature=0.0, max_tokens=None):
    args = dict(model="gsa", max_tokens=max_tokens or case["max_tokens"], temperature=temperature)
    if seed is not None:
        args["seed"] = seed
    if case["chat"]:
        messages = [{"role": "user", "content": case["user"]}]
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(messages=messages, stream=True, **args) if c.choices)
        return client.chat.completions.create(messages=messages, **args).choices[0].message.content
    extra = {"context": case["context"]} if case["context"] else None
    if stream:
        return "".join(c.choices[0].text for c in
                       client.completions.create(prompt=case["prompt"], stream=True, extra_body=extra, **args))
    return client.completions.create(prompt=case["prompt"], extra_body=extra, **args).choices[0].text


def disconnect_early(case):
    # Reads the first streamed chunk, then closes the connection: the server must drop the request.
    s = client.completions.create(model="gsa", prompt=case["prompt"], max_tokens=400, temperature=0, stream=True,
                                  extra_body={"context": case["context"]} if case["context"] else None)
    for _ in s:
        break
    s.close()


def raw(method, path, body=b"", headers=None, auth=True):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json", **(headers or {})}
    if auth:
        h["Authorization"] = f"Bearer {api_key}"
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def raw_socket(request):
    # Sends raw bytes, reads the answer until the server closes: (status, body).
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(request)
        except OSError:
            pass  # the server may answer and stop reading before everything is sent
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    status = int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else -1
    return status, reply.split(b"\r\n\r\n", 1)[-1]


def expect_error(name, status, data, want_status):
    if status != want_status:
        return fail(f"{name}: HTTP {status}, expected {want_status}: {data[:200]!r}")
    try:
        err = json.loads(data)["error"]
        assert isinstance(err["message"], str) and err["message"] and "type" in err
    except Exception as e:  # noqa: BLE001
        return fail(f"{name}: not an OpenAI error object ({e}): {data[:200]!r}")
    print(f"  {name}: {status} {err['message'][:90]}", flush=True)


def load_phase():
    # 1. Concurrent clients: greedy completions (plain, streamed, chat) equal gsa generate; some disconnect early.
    results = {}

    def worker(i):
        case = oracle[i % (len(oracle) - 1)]
        try:
            if i % 8 == 7:
                disconnect_early(case)
                results[i] = None
            else:
                results[i] = (case, complete(case, stream=(i % 2 == 1)))
        except Exception as e:  # noqa: BLE001
            results[i] = e

    start = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    same = 0
    for i, r in sorted(results.items()):
        if isinstance(r, Exception):
            fail(f"client {i}: {type(r).__name__}: {r}")
        elif r is not None:
            case, text = r
            if text != case["text"]:
                fail(f"client {i}: completion {text!r} differs from gsa generate {case['text']!r}")
            else:
                same += 1
    print(f"32 concurrent clients in {time.time() - start:.1f} s: {same} completions equal gsa generate, "
          f"4 disconnected early", flush=True)

    # 2. A fixed seed gives the same sampled completion alone and next to other requests.
    case = oracle[0]
    alone = complete(case, seed=1234, temperature=0.9)
    busy = {}
    others = [threading.Thread(target=lambda: complete(oracle[1], seed=7, temperature=1.0)) for _ in range(3)]
    mine = threading.Thread(target=lambda: busy.update(text=complete(case, seed=1234, temperature=0.9)))
    for t in others + [mine]:
        t.start()
    for t in others + [mine]:
        t.join()
    if busy.get("text") != alone:
        fail(f"seed 1234: {busy.get('text')!r} with other requests running, {alone!r} alone")
    else:
        print(f"seed 1234 sampled the same completion alone and under load: {alone!r}", flush=True)

    # 3. Malformed requests: each a 4xx OpenAI error, and the server keeps serving.
    body = lambda **kw: json.dumps({"model": "gsa", "prompt": "x", "max_tokens": 2, **kw}).encode()
    expect_error("malformed JSON", *raw("POST", "/v1/completions", b'{"model": "gsa", "prompt": '), 400)
    expect_error("not an object", *raw("POST", "/v1/completions", b"[1, 2]"), 400)
    expect_error("wrong type", *raw("POST", "/v1/completions", body(max_tokens="many")), 400)
    expect_error("unknown field", *raw("POST", "/v1/completions", body(frobnicate=1)), 400)
    expect_error("unsupported field", *raw("POST", "/v1/completions", body(logprobs=3)), 400)
    expect_error("empty prompt", *raw("POST", "/v1/completions", body(prompt="")), 400)
    expect_error("oversized prompt", *raw("POST", "/v1/completions", body(prompt="y" * 5000)), 400)
    expect_error("temperature NaN", *raw("POST", "/v1/completions", b'{"model":"gsa","prompt":"x","temperature":NaN}'),
                 400)
    expect_error("temperature 1e400", *raw("POST", "/v1/completions", body(temperature=float("inf")).replace(
        b"Infinity", b"1e400")), 400)
    expect_error("top_p 0", *raw("POST", "/v1/completions", body(top_p=0)), 400)
    expect_error("max_tokens 0", *raw("POST", "/v1/completions", body(max_tokens=0)), 400)
    expect_error("max_tokens INT64_MAX", *raw("POST", "/v1/completions", body(prompt="xyz", max_tokens=2**63 - 1)), 503)
    expect_error("n 2", *raw("POST", "/v1/completions", body(n=2)), 400)
    # One position for two ranks: the sharded engine refuses it (each rank's shard needs one) and goes on serving.
    expect_error("prompt shorter than the ranks", *raw("POST", "/v1/completions", body()), 400)
    expect_error("empty messages", *raw("POST", "/v1/chat/completions", b'{"model":"gsa","messages":[]}'), 400)
    expect_error("bad role", *raw("POST", "/v1/chat/completions",
                                  b'{"model":"gsa","messages":[{"role":"robot","content":"x"}]}'), 400)
    expect_error("unknown model", *raw("POST", "/v1/completions", body(model="gpt-4")), 404)
    expect_error("no API key", *raw("POST", "/v1/completions", body(), auth=False), 401)
    expect_error("unknown path", *raw("GET", "/v2/nothing"), 404)
    expect_error("wrong method", *raw("GET", "/v1/completions"), 405)
    big = body(prompt="z" * 200000)
    expect_error("oversized body", *raw_socket(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                               + str(len(big)).encode() + b"\r\n\r\n" + big), 413)
    expect_error("oversized headers", *raw_socket(b"GET /health HTTP/1.1\r\nX-Big: " + b"h" * 40000 + b"\r\n\r\n"),
                 431)
    # A client that sends half a request and stalls gets 408 after the read timeout.
    expect_error("stalled client", *raw_socket(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":"), 408)
    expect_error("not HTTP", *raw_socket(b"\x00\x01 not http at all\r\n\r\n"), 400)
    for case in oracle[:-1]:
        if complete(case) != case["text"]:
            fail("after the malformed requests a correct one differs from gsa generate")
    status, health = raw("GET", "/health", auth=False)
    if status != 200:
        fail(f"/health answered {status} after the malformed requests")
    metrics = raw("GET", "/metrics", auth=False)[1].decode()
    for name in ("gsa_queue_depth", "gsa_running_requests", "gsa_tokens_per_second", "gsa_kv_cache_allocated_bytes",
                 "gsa_time_to_first_token_seconds_bucket", "gsa_time_per_output_token_seconds_count"):
        if name not in metrics:
            fail(f"/metrics lacks {name}")
    cancelled = [l for l in metrics.splitlines() if l.startswith('gsa_requests_total{outcome="cancelled"}')]
    if not cancelled or int(float(cancelled[0].split()[-1])) < 4:
        fail(f"/metrics counts {cancelled} cancelled requests, expected the 4 early disconnects")
    print("server alive and correct after the malformed requests; metrics present", flush=True)


def drain_phase():
    # SIGTERM to rank 0 (pid in argv[5]) while a request runs: the request must still complete, exactly.
    case = oracle[-1]  # the long one
    got = {}
    t = threading.Thread(target=lambda: got.update(text=complete(case)))
    t.start()
    for _ in range(600):
        metrics = raw("GET", "/metrics", auth=False)[1].decode()
        if "gsa_running_requests 1" in metrics:
            break
        time.sleep(0.05)
    else:
        fail("the request never showed up as running in /metrics")
    os.kill(int(sys.argv[5]), signal.SIGTERM)
    t.join()
    if got.get("text") != case["text"]:
        fail(f"in-flight request during SIGTERM: {got.get('text')!r}, expected {case['text']!r}")
    else:
        print(f"SIGTERM while a request was running: it completed ({len(case['text'])} characters)", flush=True)


(load_phase if phase == "load" else drain_phase)()
sys.exit(1 if failures else 0)
