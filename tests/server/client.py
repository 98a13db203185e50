#!/usr/bin/env python3
"""client.py PORT API_KEY EXPECT_DIR — a Python stdlib (urllib, socket) client
of `steer serve`, run by tests/cli/cli_serve.sh. EXPECT_DIR holds what `steer
generate` printed for the same steering (cv.txt, happy.txt, plain.txt). Checks:
completions and chat (the no-template fallback) byte for byte against
generate; streaming SSE concatenates to the same text; four concurrent
requests with different steering give each the bytes it gets alone, in
shared batches; captures; the bad-input matrix, each case followed by a valid
request answered 200. Prints ok/FAIL lines; exits 1 on any failure."""
import base64
import json
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

PORT, KEY, EXP = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BASE = f"http://127.0.0.1:{PORT}"
fails = 0
PROMPT = "Once upon a time"


def ok(name, cond, detail=""):
    global fails
    if cond:
        print(f"ok   {name}")
    else:
        fails += 1
        print(f"FAIL {name} {detail}")


def req(path, body=None, key=KEY, raw=None, method=None, timeout=60):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    r = urllib.request.Request(BASE + path, data=data, method=method)
    r.add_header("Content-Type", "application/json")
    if key:
        r.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(r, timeout=timeout) as f:
            return f.status, f.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def complete(extra=None, prompt=PROMPT, n=32):
    body = {"model": "m", "prompt": prompt, "max_tokens": n, "temperature": 0}
    body.update(extra or {})
    st, txt = req("/v1/completions", body)
    return st, (json.loads(txt) if txt.startswith("{") else txt)


def expect(name):
    with open(f"{EXP}/{name}.txt", encoding="utf-8") as f:
        return f.read()


def stream(body):
    """POST with stream: true; returns (status, list of parsed data objects, saw [DONE])."""
    r = urllib.request.Request(BASE + "/v1/completions", data=json.dumps(body).encode())
    r.add_header("Authorization", "Bearer " + KEY)
    chunks, done = [], False
    with urllib.request.urlopen(r, timeout=60) as f:
        ctype = f.headers.get("Content-Type")
        for line in f:
            line = line.decode().rstrip("\n")
            if line.startswith("data: "):
                if line[6:] == "[DONE]":
                    done = True
                else:
                    chunks.append(json.loads(line[6:]))
        return f.status, ctype, chunks, done


def valid_after(what):
    st, js = complete(n=4)
    ok(f"  valid request after {what} -> 200", st == 200, f"got {st} {js}")


CV = {"control_vectors": [{"name": "cv", "scale": 2.0}]}
HAPPY = {"steering": [{"vector": "happy", "site": "mlp_in", "layers": [1, 2], "scale": 4.0}]}

# ---------------------------------------------------------------- vs `steer generate`
for name, extra in (("plain", {}), ("cv", CV), ("happy", HAPPY)):
    st, js = complete(extra)
    got = PROMPT + js["choices"][0]["text"] + "\n" if st == 200 else None
    ok(f"completion ({name}) == steer generate byte for byte", got == expect(name), f"\n got {got!r}\n want {expect(name)!r}")
ok("steering changes the text", expect("cv") != expect("plain") and expect("happy") != expect("plain"))
st, js = complete(CV)
ok("usage counts", st == 200 and js["usage"]["prompt_tokens"] == 5 and js["usage"]["completion_tokens"] == 32
   and js["choices"][0]["finish_reason"] == "length", str(js))

# inline values: the happy vector's own numbers at one layer == the named vector at that layer
st, vj = req("/v1/steering/vectors")
vecs = {v["name"]: v for v in json.loads(vj)["data"]}
ok("GET /v1/steering/vectors lists cv and happy with sites, layers, norms",
   st == 200 and vecs["cv"]["kind"] == "control_vector" and any(
       t["site"] == "mlp_in" and t["layer"] == 1 and t["norm"] > 0 for t in vecs["happy"]["vectors"]), vj[:200])

# chat: stories260K has no chat template -> the contents joined by newlines, like a completion
st, txt = req("/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32,
                                       "temperature": 0, **CV})
js = json.loads(txt)
ok("chat (no template: plain text fallback) == steer generate", st == 200 and PROMPT + js["choices"][0]["message"]["content"] + "\n" == expect("cv")
   and js["object"] == "chat.completion", txt[:300])

# streaming
st, ctype, chunks, done = stream({"prompt": PROMPT, "max_tokens": 32, "temperature": 0, "stream": True, **CV})
text = "".join(c["choices"][0]["text"] for c in chunks)
ok("stream: text/event-stream, chunks join to the same bytes, [DONE]",
   st == 200 and ctype == "text/event-stream" and PROMPT + text + "\n" == expect("cv") and done
   and chunks[-1]["choices"][0]["finish_reason"] == "length", f"{ctype} {text!r} {done}")

# ---------------------------------------------------------------- batched == alone
cfgs = [
    {},
    CV,
    {"steering": [{"vector": "happy", "site": "mlp_in", "layers": [3], "scale": -3.0, "positions": "generated"}]},
    {"steering": [{"values": [((i * 7) % 11 - 5) / 4.0 for i in range(64)], "site": "resid_post", "layer": 2, "scale": 1.5}]},
]
alone = []
for c in cfgs:
    st, js = complete(c, n=120)
    alone.append(js["choices"][0]["text"] if st == 200 else None)
ok("four steering configurations give four different texts", len(set(alone)) == 4, str(alone))


def metric(name):
    _, t = req("/metrics")
    for line in t.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


steps0, rows0 = metric("steer_forward_steps_total"), metric("steer_batch_rows_total")
res = [None] * 8
barrier = threading.Barrier(8)


def worker(i):
    barrier.wait()
    st, js = complete(cfgs[i % 4], n=120)
    res[i] = js["choices"][0]["text"] if st == 200 else None


ths = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in ths:
    t.start()
for t in ths:
    t.join()
steps1, rows1 = metric("steer_forward_steps_total"), metric("steer_batch_rows_total")
rows_per_step = (rows1 - rows0) / max(1, steps1 - steps0)
ok(f"8 concurrent differently steered requests, batched ({rows_per_step:.2f} rows per forward pass) "
   "== each alone, byte for byte", all(res[i] == alone[i % 4] for i in range(8)) and rows_per_step > 1.5,
   f"{[r == alone[i % 4] for i, r in enumerate(res)]}")

# ---------------------------------------------------------------- capture
st, js = complete({"capture": [{"site": "resid_post", "layer": 2}, {"site": "mlp_act", "layer": 1}]}, n=2)
if st == 200:
    cap = js["capture"]
    a = struct.unpack(f"<{5 * 64}f", base64.b64decode(cap[0]["data"]))
    b = base64.b64decode(cap[1]["data"])
    ok("capture: shapes [5, 64] and [5, d_ff], finite, non-zero", cap[0]["shape"] == [5, 64] and cap[1]["shape"][0] == 5
       and len(b) == 4 * 5 * cap[1]["shape"][1] and all(x == x and abs(x) < 1e30 for x in a) and any(a), str(cap[0]["shape"]))
else:
    ok("capture", False, str(js))

# ---------------------------------------------------------------- bad input matrix
def bad(name, status, needle, **kw):
    path = kw.pop("path", "/v1/completions")
    st, txt = req(path, **kw)
    msg = ""
    try:
        msg = json.loads(txt)["error"]["message"]
    except Exception:
        pass
    ok(f"{name} -> {st}: {msg}", st == status and needle in msg and "\n" not in msg, txt[:200])
    valid_after(name)


bad("malformed JSON", 400, "not valid JSON", raw=b'{"prompt": "x", ')
bad("NaN literal", 400, "not valid JSON", raw=b'{"prompt": "x", "temperature": NaN}')
bad("body not an object", 400, "JSON object", raw=b'[1, 2]')
bad("wrong type: max_tokens string", 400, "max_tokens must be an integer", body={"prompt": "x", "max_tokens": "10"})
bad("wrong type: prompt number", 400, "prompt must be a string", body={"prompt": 3})
bad("wrong type: stream", 400, "stream must be true or false", body={"prompt": "x", "stream": "yes"})
bad("wrong type: steering", 400, "steering must be an array", body={"prompt": "x", "steering": {"vector": "happy"}})
bad("unknown vector", 400, "unknown vector 'sad'", body={"prompt": "x", "steering": [{"vector": "sad"}]})
bad("unknown control vector", 400, "unknown control vector 'nope'", body={"prompt": "x", "control_vectors": [{"name": "nope"}]})
bad("a path as a vector name", 400, "unknown vector '../vecs/happy'", body={"prompt": "x", "steering": [{"vector": "../vecs/happy"}]})
bad("wrong width", 400, "values has 3 numbers but resid_post is 64 wide",
    body={"prompt": "x", "steering": [{"values": [1, 2, 3], "site": "resid_post", "layer": 1}]})
bad("infinite value (1e999)", 400, "values[0] is not a finite number",
    raw=b'{"prompt": "x", "steering": [{"values": [1e999' + b', 0' * 63 + b'], "site": "resid_post", "layer": 1}]}')
bad("scale not finite", 400, "scale", raw=b'{"prompt": "x", "control_vectors": [{"name": "cv", "scale": -1e999}]}')
bad("unknown site", 400, "unknown site 'resid_middle'",
    body={"prompt": "x", "steering": [{"vector": "happy", "site": "resid_middle"}]})
bad("layer out of range", 400, "layer must be in [0, 4]",
    body={"prompt": "x", "steering": [{"values": [0] * 64, "site": "resid_post", "layer": 9}]})
bad("prompt + max_tokens beyond the context", 400, "exceeds the context (512 positions)",
    body={"prompt": "x", "max_tokens": 600})
bad("oversized body", 413, "over the limit", raw=b'{"prompt": "' + b"a" * (80 * 1024) + b'"}')
bad("missing API key", 401, "API key", body={"prompt": "x"}, key=None)
bad("wrong API key", 401, "API key", body={"prompt": "x"}, key="nope")
bad("unknown endpoint", 404, "no endpoint /v1/nothing", path="/v1/nothing", body={})
bad("wrong method", 405, "takes POST", path="/v1/completions", method="GET")
bad("messages missing", 400, "messages must be a non-empty array", path="/v1/chat/completions", body={"prompt": "x"})

# slow client: sends half a request and stalls; the server closes it after --timeout (2 s)
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
t0 = time.monotonic()
valid_after("a slow client connected")
s.settimeout(10)
try:
    closed = s.recv(4096) == b""  # closed without an answer
except (socket.timeout, ConnectionResetError):
    closed = False
waited = time.monotonic() - t0
ok(f"slow client closed by the server after {waited:.1f} s (--timeout 2)", closed and 1.0 < waited < 8, f"{closed} {waited}")
s.close()

# disconnect mid-stream: the sequence is cancelled (active sequences back to 0)
gen_before = metric("steer_generated_tokens_total")
s = socket.create_connection(("127.0.0.1", PORT))
body = json.dumps({"prompt": PROMPT, "max_tokens": 500, "temperature": 0, "stream": True}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
          b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
# read until the first token's chunk: the sequence is then running (the
# headers alone can come before the scheduler admits it)
s.settimeout(30)
first = s.recv(4096)
while b"data:" not in first:
    more = s.recv(4096)
    if not more:
        break
    first += more
s.close()
# a generous bound: once, under a parallel ctest on 2 cores, the server took
# more than 10 s to reach its next token write (where it sees the disconnect)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and metric("steer_active_sequences") != 0:
    time.sleep(0.05)
active = metric("steer_active_sequences")
gen0 = metric("steer_generated_tokens_total")
time.sleep(0.3)
gen1 = metric("steer_generated_tokens_total")
ok(f"disconnect mid-stream cancels the sequence (active {active:.0f}; {gen0 - gen_before:.0f} of 500 tokens made, "
   "none after)", b"200 OK" in first and active == 0 and gen1 == gen0 and gen0 - gen_before < 500,
   f"{first[:40]!r} {active} {gen_before} {gen0} {gen1}")
valid_after("a disconnect mid-stream")

# non-streaming request whose client goes away: cancelled too
s = socket.create_connection(("127.0.0.1", PORT))
body = json.dumps({"prompt": PROMPT, "max_tokens": 500, "temperature": 0}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
          b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
time.sleep(0.05)
s.close()
deadline = time.monotonic() + 10
while time.monotonic() < deadline and metric("steer_active_sequences") != 0:
    time.sleep(0.05)
ok("disconnect while waiting for a whole answer: cancelled", metric("steer_active_sequences") == 0)
valid_after("a disconnect before the answer")

st, t = req("/health", key=None)
ok("GET /health without a key", st == 200 and "ok" in t)
st, t = req("/v1/models")
ok("GET /v1/models", st == 200 and json.loads(t)["data"][0]["object"] == "model")
_, t = req("/metrics")
ok("metrics: requests by status, tokens, queue, latency histogram",
   'steer_requests_total{status="400"}' in t and 'steer_requests_total{status="413"}' in t
   and "steer_queue_length 0" in t and 'steer_request_duration_seconds_bucket{le="+Inf"}' in t)
print(f"{fails} failure(s) (python client)")
sys.exit(1 if fails else 0)
