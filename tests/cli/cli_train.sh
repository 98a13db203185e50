#!/usr/bin/env bash
# cli_train.sh STEER REPO — `steer train` / `steer eval` end to end on tiny
# settings (stories260K, a few Winogrande dev items): --dry-run counts, an
# adapter run (files, train.csv, figures), eval with the adapter, resume, and
# bad input (malformed line, a completion longer than the context, an adapter
# of another model) as one-line errors with nothing left behind.
set -u
STEER=${1:?usage: cli_train.sh STEER REPO}
REPO=${2:?usage: cli_train.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
M=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out"

ok "train --dry-run adapter" "$STEER" train -m "$M" --method adapter --dry-run
has "$TMP/stdout.txt" "^trainable 5120 of 260032 " "adapter: 2·d·r·L = 2·64·8·5"
ok "train --dry-run vector" "$STEER" train -m "$M" --method vector --layers 2 --dry-run
has "$TMP/stdout.txt" "^trainable 64 of 260032 " "vector at one layer: d"

R=$TMP/run
ok "train adapter" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 40 --holdout 0.25 --method adapter \
    --lr 1e-2 --steps 6 --batch 4 --eval-every 3 --out "$R" --quiet
for f in adapter.safetensors state.safetensors train.csv loss.png loss.svg; do
    [ -s "$R/$f" ] && pass "wrote $f" || fail "missing $f"
done
has "$R/train.csv" "^step,lr,loss,grad_norm,eval_loss,eval_acc,eval_exact,eval_format,tokens_per_s" "csv header"
has "$R/train.csv" "^6," "csv has step 6"
ok "eval with adapter" "$STEER" eval -m "$M" --adapter "$R/adapter.safetensors" --data "winogrande:$DEV" --n 8
has "$TMP/stdout.txt" '"n": 8, "acc": ' "eval prints a JSON line"
ok "eval csv" "$STEER" eval -m "$M" --data "winogrande:$DEV" --n 4 --csv
has "$TMP/stdout.txt" "^model,adapter,data,n,acc,exact,format,loss" "eval CSV header"

# resume: 3 steps then resume to 6 gives the uninterrupted adapter
R2=$TMP/run2
ok "train stop-after 3" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 40 --holdout 0.25 --method adapter \
    --lr 1e-2 --steps 6 --batch 4 --eval-every 3 --out "$R2" --quiet --stop-after 3
ok "train --resume" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 40 --holdout 0.25 --method adapter \
    --lr 1e-2 --steps 6 --batch 4 --eval-every 3 --out "$R2" --quiet --resume
"$STEER" tensors "$R/adapter.safetensors" >/dev/null 2>&1
python3 - "$R/adapter.safetensors" "$R2/adapter.safetensors" <<'PY' && pass "resumed adapter = uninterrupted" || fail "resumed adapter differs"
import sys, json, struct
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
PY

# bad input
printf '{"qID": "a", "sentence": "x _ y", "option1": "a", "option2": "b", "answer": "1"}\n{"qID": "b", "sentence": "x _ y", "option1": "a"\n' >"$TMP/bad.jsonl"
expect_fail "malformed line" "bad.jsonl:2" "$STEER" train -m "$M" --data "winogrande:$TMP/bad.jsonl" --method vector --steps 1 --out "$TMP/out/r"
python3 -c "import json; print(json.dumps({'prompt': 'Hi', 'completion': ' a' * 600}))" >"$TMP/long.jsonl"
expect_fail "completion longer than the context" "context holds" "$STEER" train -m "$M" --data "jsonl:$TMP/long.jsonl" --method vector --steps 1 --out "$TMP/out/r"
expect_fail "adapter of another model" "adapter.safetensors" "$STEER" eval -m "$REPO/tests/data/llama/hf" --adapter "$R/adapter.safetensors" --data "winogrande:$DEV" --n 2
expect_fail "unknown method" "method" "$STEER" train -m "$M" --data "winogrande:$DEV" --method nope --steps 1 --out "$TMP/out/r"
finish
