#!/usr/bin/env bash
# serve_soak.sh [STEER] [SECONDS] — bounded soak of `steer serve` (default 600 s,
# at most 600): stories260K, --parallel 8, vectors made as in
# tests/cli/cli_serve.sh; bench/serve_soak.py sends mixed valid and invalid
# requests and samples RSS; then SIGTERM must exit 0. Fails if the server
# crashes, a valid request is not answered 200, or RSS after the warm-up
# moves by more than 5%.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STEER=${1:-$REPO/build/steer}
SECS=${2:-600}
[ "$SECS" -le 600 ] || { echo "at most 600 seconds"; exit 2; }
MODEL=$REPO/models/stories260K/stories260K.bin
TMP=$(mktemp -d); PID=
trap '[ -n "$PID" ] && kill -KILL $PID 2>/dev/null; rm -rf "$TMP"' EXIT
printf '%s\n' "Once upon a time there was a happy girl" "Tom smiled at his friend" >"$TMP/pos.txt"
printf '%s\n' "Once upon a time there was a sad girl" "Tom frowned at his friend" >"$TMP/neg.txt"
mkdir -p "$TMP/v"
"$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" --site resid_post,mlp_in -o "$TMP/v/happy.safetensors" >/dev/null
"$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" --layers 1-4 -o "$TMP/r.safetensors" >/dev/null
"$STEER" vec export --llamacpp "$TMP/r.safetensors" -o "$TMP/v/cv.gguf" >/dev/null
"$STEER" serve -m "$MODEL" --vectors "$TMP/v" --port 0 --parallel 8 --max-body 1024 2>"$TMP/err" &
PID=$!
for _ in $(seq 100); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/err" | sed 's/.*://' || true)
    [ -n "$PORT" ] && break; sleep 0.1
done
echo "soak: $SECS s on port $PORT, pid $PID; cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f)$' | tr '\n' ' ')"
rc=0
python3 "$REPO/bench/serve_soak.py" "$PORT" "$PID" "$SECS" || rc=1
kill -0 "$PID" 2>/dev/null || { echo "FAIL: the server died"; exit 1; }
kill -TERM "$PID"; wait "$PID"; src=$?; PID=
echo "SIGTERM exit status $src"
[ "$src" = 0 ] || rc=1
exit $rc
