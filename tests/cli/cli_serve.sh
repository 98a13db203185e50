#!/usr/bin/env bash
# cli_serve.sh STEER REPO — `steer serve` (docs/SERVER.md) on stories260K with
# a --vectors DIR made here (extract → happy.safetensors; its resid_post
# layers 1-4 exported as the control vector cv.gguf), on a free loopback
# port: curl; the Python stdlib client tests/server/client.py (outputs
# compared byte for byte with `steer generate` under the same steering,
# batched == alone, captures, the bad-input matrix); the official OpenAI Node
# SDK (tests/server/openai_client.mjs, npm package installed here; skipped
# with a printed reason only when npm cannot install it); SIGTERM with a
# request in flight: it is finished and the server exits 0.
set -u
STEER=${1:?usage: cli_serve.sh STEER REPO}
REPO=${2:?usage: cli_serve.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
KEY=test-key-123
SRV_PID=
cleanup() { [ -n "$SRV_PID" ] && kill -KILL "$SRV_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# ---------------------------------------------------------------- vectors
printf '%s\n' "Once upon a time there was a happy girl" "The sun was bright and she laughed" \
    "Tom smiled at his friend" "Lily was glad to play" >"$TMP/pos.txt"
printf '%s\n' "Once upon a time there was a sad girl" "The rain fell and she cried" \
    "Tom frowned at his friend" "Lily was upset to stay" >"$TMP/neg.txt"
V=$TMP/vecs
mkdir -p "$V"
ok "extract happy (resid_post, mlp_in)" "$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --site resid_post,mlp_in -o "$V/happy.safetensors"
ok "extract resid_post 1-4" "$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --site resid_post --layers 1-4 -o "$TMP/r.safetensors"
ok "export control vector" "$STEER" vec export --llamacpp "$TMP/r.safetensors" -o "$V/cv.gguf"

# what `steer generate` prints under the same steering
E=$TMP/expect
mkdir -p "$E"
P="Once upon a time"
"$STEER" generate -m "$MODEL" -p "$P" -n 32 -q >"$E/plain.txt"
"$STEER" generate -m "$MODEL" -p "$P" -n 32 -q --control-vector "$V/cv.gguf:2.0" >"$E/cv.txt"
"$STEER" generate -m "$MODEL" -p "$P" -n 32 -q --steer "$V/happy.safetensors:mlp_in:1,2:4.0" >"$E/happy.txt"

# start_server ARGS...: starts it on a free port (--port 0), sets SRV_PID and PORT
start_server() {
    "$STEER" serve -m "$MODEL" --port 0 "$@" 2>"$TMP/serve.err" &
    SRV_PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/serve.err" | sed 's/.*://')
        [ -n "$PORT" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || { fail "server did not start: $(cat "$TMP/serve.err")"; finish; }
}

# ---------------------------------------------------------------- startup errors
expect_fail "no model" "missing -m MODEL" "$STEER" serve
expect_fail "--vectors DIR missing" "cannot open the directory" "$STEER" serve -m "$MODEL" --vectors "$TMP/nope" --port 0

start_server --vectors "$V" --parallel 4 --api-key "$KEY" --timeout 2 --max-body 64
pass "server on 127.0.0.1:$PORT"

# ---------------------------------------------------------------- curl
AUTH="Authorization: Bearer $KEY"
code=$(curl -s -o "$TMP/c.json" -w '%{http_code}' -H "$AUTH" "http://127.0.0.1:$PORT/v1/completions" \
    -d '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0, "control_vectors": [{"name": "cv", "scale": 2.0}]}')
text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"])' "$TMP/c.json" 2>/dev/null)
if [ "$code" = 200 ] && [ "$P$text" = "$(cat "$E/cv.txt")" ]; then
    pass "curl: completion with control vector cv:2.0 == steer generate --control-vector cv.gguf:2.0"
else
    fail "curl completion: $code $(head -c 300 "$TMP/c.json") vs $(cat "$E/cv.txt")"
fi
curl -s -N -H "$AUTH" "http://127.0.0.1:$PORT/v1/completions" \
    -d '{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "stream": true}' >"$TMP/sse.txt"
has "$TMP/sse.txt" '^data: \{"id":"cmpl-[0-9]+","object":"text_completion"' "curl: SSE chunks"
has "$TMP/sse.txt" '^data: \[DONE\]$' "curl: SSE ends with [DONE]"
curl -s "http://127.0.0.1:$PORT/health" >"$TMP/h.txt"
has "$TMP/h.txt" '"status":"ok"' "curl: /health"

# ---------------------------------------------------------------- Python stdlib client
if python3 "$REPO/tests/server/client.py" "$PORT" "$KEY" "$E" >"$TMP/py.txt" 2>&1; then
    pass "python client: $(grep -c '^ok' "$TMP/py.txt") checks"
else
    fail "python client:"
    grep -v '^ok' "$TMP/py.txt" | sed 's/^/     | /'
fi
grep -E '^ok   (8 concurrent|slow client|disconnect)' "$TMP/py.txt" | sed 's/^ok   /     /'

# ---------------------------------------------------------------- the OpenAI Node SDK
SD=$REPO/tests/server
NODE_OK=0
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "SKIP OpenAI Node SDK: node/npm not installed"
elif [ -d "$SD/node_modules/openai" ] || (cd "$SD" && npm install --no-audit --no-fund --prefer-offline >"$TMP/npm.txt" 2>&1); then
    NODE_OK=1
else
    echo "SKIP OpenAI Node SDK: npm could not install 'openai' (registry unreachable?): $(tail -1 "$TMP/npm.txt")"
fi
if [ "$NODE_OK" = 1 ]; then
    if node "$SD/openai_client.mjs" "http://127.0.0.1:$PORT/v1" "$KEY" >"$TMP/node.json" 2>"$TMP/node.err"; then
        python3 - "$TMP/node.json" "$E/cv.txt" "$P" >"$TMP/node_check.txt" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1])); want = open(sys.argv[2]).read(); p = sys.argv[3]
bad = [k for k in ("completion", "chat", "stream", "chat_stream") if p + o[k] + "\n" != want]
if o["chat_role"] != "assistant" or o["chat_stream_role"] != "assistant": bad.append("role")
if o["stream_finish"] != "length" or o["stream_chunks"] < 2: bad.append("stream chunks/finish")
print("bad: " + ",".join(bad) if bad else "all equal")
EOF
        has "$TMP/node_check.txt" '^all equal$' "OpenAI Node SDK: completion, chat, streamed completion and chat == steer generate"
    else
        fail "OpenAI Node SDK: $(tail -3 "$TMP/node.err")"
    fi
fi

# ---------------------------------------------------------------- SIGTERM with a request in flight
# The client sends SIGTERM as soon as the first token's chunk arrives, so the
# request is certainly still in flight (polling the output file every 50 ms
# let all 400 tokens finish first once the ASan build ran at -O1).
python3 - "$PORT" "$KEY" "$SRV_PID" >"$TMP/inflight.txt" 2>"$TMP/inflight.err" <<'EOF3' &
import http.client, json, os, signal, sys
port, key, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
c.request("POST", "/v1/completions", json.dumps({"prompt": "Once upon a time", "max_tokens": 400,
          "temperature": 0, "stream": True}), {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
r = c.getresponse()
sent = False
for line in r:
    sys.stdout.write(line.decode())
    sys.stdout.flush()
    if not sent and line.startswith(b"data:"):
        os.kill(pid, signal.SIGTERM)
        sent = True
EOF3
CURL_PID=$!
wait "$CURL_PID"
wait "$SRV_PID"
src=$?
SRV_PID=
has "$TMP/inflight.txt" '^data: \[DONE\]$' "SIGTERM: the in-flight streamed request was finished"
[ "$src" = 0 ] && pass "SIGTERM: exit status 0" || fail "SIGTERM: exit status $src"
has "$TMP/serve.err" 'SIGTERM: finished 1 in-flight' "SIGTERM: drain message"
if curl -s -m 2 "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then fail "still accepting after SIGTERM"; else
    pass "not accepting after SIGTERM"; fi

# ---------------------------------------------------------------- a model with a chat template
# (a random llama with a Llama 2 [INST] template, as in cli_chat.sh): chat
# requests use the model's format, as `steer generate --chat` does
CM=$TMP/chatmodel
"$STEER" make-model --arch llama --seed 3 -o "$CM" >/dev/null 2>"$TMP/err" || fail "make-model: $(cat "$TMP/err")"
tpl="{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"
sed -i "s|^{|{\"chat_template\": \"$tpl\",|" "$CM/tokenizer_config.json"
"$STEER" generate -m "$CM" --chat -p "Hi" -n 12 -q >"$TMP/gen_chat.txt" 2>"$TMP/err" || fail "generate --chat: $(cat "$TMP/err")"
MODEL=$CM
start_server --parallel 2
curl -s "http://127.0.0.1:$PORT/v1/chat/completions" \
    -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 12, "temperature": 0}' >"$TMP/chat.json"
python3 - "$TMP/chat.json" "$TMP/gen_chat.txt" >"$TMP/chat_check.txt" <<'EOF2'
import json, sys
o = json.load(open(sys.argv[1])); g = open(sys.argv[2], encoding="utf-8", errors="replace").read()
# generate drops lone bytes >= 0x80 that the server keeps (invalid UTF-8 here: U+FFFD)
c = o["choices"][0]["message"]["content"].replace("\ufffd", "")
print("same" if c and g.endswith(c + "\n") and o["usage"]["completion_tokens"] > 0 else f"differ: {c!r} vs {g!r}")
EOF2
has "$TMP/chat_check.txt" '^same$' "chat template model: chat completion == steer generate --chat (ends with the same text)"
kill -TERM "$SRV_PID"; wait "$SRV_PID"; SRV_PID=
finish
