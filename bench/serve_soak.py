#!/usr/bin/env python3
"""serve_soak.py PORT PID SECONDS — the load of bench/serve_soak.sh: 6 threads
send, for SECONDS, a mix of valid completions (plain, steered, streamed,
chat, captures) and invalid requests (malformed JSON, wrong types, unknown
vector, wrong width, infinite values, oversized body, context overflow,
disconnects mid-stream); the server's RSS (/proc/PID/status VmRSS) is
sampled every 2 s. Prints counts and the RSS series summary; exits 1 if a
valid request was not answered 200, an invalid one not 4xx, or RSS after the
warm-up (first 20%) varies by more than 5%."""
import json, random, socket, sys, threading, time, urllib.error, urllib.request

PORT, PID, SECS = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
BASE = f"http://127.0.0.1:{PORT}"
lock = threading.Lock()
stats = {"valid_ok": 0, "valid_bad": 0, "invalid_4xx": 0, "invalid_other": 0, "disconnects": 0}
bad_examples = []


def post(path, raw, timeout=120):
    r = urllib.request.Request(BASE + path, data=raw, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=timeout) as f:
            f.read()
            return f.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except (BrokenPipeError, ConnectionResetError) as e:
        return "closed"  # refused while still sending (the oversized body: 413 from Content-Length, then closed)
    except urllib.error.URLError as e:
        if isinstance(e.reason, (BrokenPipeError, ConnectionResetError)):
            return "closed"
        return repr(e)
    except Exception as e:  # other connection problems count as failures
        return repr(e)


VEC = [0.1 * ((i * 5) % 7 - 3) for i in range(64)]
VALID = [
    ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0}),
    ("/v1/completions", {"prompt": "Tom had a dog", "max_tokens": 32, "temperature": 0.8, "seed": 3,
                         "control_vectors": [{"name": "cv", "scale": 2.0}]}),
    ("/v1/completions", {"prompt": "Lily", "max_tokens": 40, "stream": True,
                         "steering": [{"vector": "happy", "site": "mlp_in", "layers": [1, 2], "scale": 4.0,
                                       "positions": "generated"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 24,
                              "steering": [{"values": VEC, "site": "resid_post", "layer": 3}]}),
    ("/v1/completions", {"prompt": "The sun", "max_tokens": 8, "capture": [{"site": "resid_post", "layer": 2}]}),
]
INVALID = [
    ("/v1/completions", b'{"prompt": "x", '),
    ("/v1/completions", b'{"prompt": 3}'),
    ("/v1/completions", json.dumps({"prompt": "x", "steering": [{"vector": "sad"}]}).encode()),
    ("/v1/completions", json.dumps({"prompt": "x", "steering": [{"values": [1, 2], "site": "resid_post", "layer": 1}]}).encode()),
    ("/v1/completions", b'{"prompt": "x", "steering": [{"values": [1e999], "site": "resid_post", "layer": 1}]}'),
    ("/v1/completions", b'{"prompt": "' + b"a" * (2 << 20) + b'"}'),
    ("/v1/completions", json.dumps({"prompt": "x", "max_tokens": 100000}).encode()),
]


def disconnect():
    s = socket.create_connection(("127.0.0.1", PORT))
    body = json.dumps({"prompt": "Once", "max_tokens": 300, "stream": True}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    s.recv(2048)
    s.close()


def worker(k):
    rnd = random.Random(k)
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        x = rnd.random()
        if x < 0.6:
            path, body = rnd.choice(VALID)
            st = post(path, json.dumps(body).encode())
            key = "valid_ok" if st == 200 else "valid_bad"
        elif x < 0.95:
            path, raw = rnd.choice(INVALID)
            st = post(path, raw)
            big = len(raw) > (1 << 20)
            key = "invalid_4xx" if (isinstance(st, int) and 400 <= st < 500) or (big and st == "closed") else "invalid_other"
        else:
            disconnect()
            st, key = None, "disconnects"
        with lock:
            stats[key] += 1
            if key in ("valid_bad", "invalid_other") and len(bad_examples) < 5:
                bad_examples.append((path, st))


def rss_kb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


ths = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
t0 = time.monotonic()
for t in ths:
    t.start()
series = []
while any(t.is_alive() for t in ths):
    series.append((time.monotonic() - t0, rss_kb()))
    time.sleep(2)
for t in ths:
    t.join()
after = [r for t, r in series if t >= 0.2 * SECS]
lo, hi = min(after), max(after)
spread = (hi - lo) / lo
print(json.dumps(stats))
print("rss series (s, kB):", " ".join(f"{t:.0f}:{r}" for t, r in series[::max(1, len(series) // 15)]))
print(f"rss samples {len(series)}: start {series[0][1]} kB, after warm-up min {lo} kB max {hi} kB "
      f"(spread {100 * spread:.2f}%), end {series[-1][1]} kB")
if bad_examples:
    print("unexpected:", bad_examples)
ok = stats["valid_bad"] == 0 and stats["invalid_other"] == 0 and spread <= 0.05 and stats["valid_ok"] > 0
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
