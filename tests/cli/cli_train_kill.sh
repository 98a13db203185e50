#!/usr/bin/env bash
# cli_train_kill.sh STEER REPO — a training run killed (SIGKILL, SIGINT) in the
# middle and restarted with --resume ends with the same adapter as an
# uninterrupted run; no file is ever torn, and a temporary file a kill leaves
# beside its target is gone after the restart. The kill lands after the run has logged at least two updates; wherever
# it lands after that, the outcome must be the same (no timing assumption).
# Small for the ASan run: 12 training items in batches of 3 over 6 updates, so
# every resume crosses the epoch boundary (after update 4), and 2 eval items.
set -u
STEER=${1:?usage: cli_train_kill.sh STEER REPO}
REPO=${2:?usage: cli_train_kill.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
M=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"

STEPS=6
ARGS=(-m "$M" --data "winogrande:$DEV" --n-train 16 --holdout 0.25 --eval-n 2 --method adapter
      --lr 1e-2 --steps $STEPS --batch 3 --eval-every 1 --seed 5 --quiet)
export OMP_NUM_THREADS=1

tensors_equal() {
python3 - "$1" "$2" <<'PY'
import sys, json, struct
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
PY
}

R=$TMP/full
ok "uninterrupted run" "$STEER" train "${ARGS[@]}" --out "$R"

for sig in KILL INT; do
    K=$TMP/killed-$sig
    "$STEER" train "${ARGS[@]}" --out "$K" >/dev/null 2>&1 &
    pid=$!
    # wait until two updates are logged (header + 2 rows + the step-0 eval row)
    for _ in $(seq 1 600); do
        [ -f "$K/train.csv" ] && [ "$(wc -l <"$K/train.csv")" -ge 4 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -f "$K/state.safetensors" ]; then
        ok "SIG$sig: state file readable" "$STEER" tensors "$K/state.safetensors"
        ok "SIG$sig: resume" "$STEER" train "${ARGS[@]}" --out "$K" --resume
    else
        ok "SIG$sig: restart (no checkpoint yet)" "$STEER" train "${ARGS[@]}" --out "$K"
    fi
    # a kill during a write may leave FILE.tmp.<pid> beside an intact FILE;
    # the next write of FILE removes it (its writer is gone)
    leftovers=$(find "$K" -name '*.tmp.*' | wc -l)
    [ "$leftovers" -eq 0 ] && pass "SIG$sig: no temporary files left after the restart" \
        || fail "SIG$sig: $leftovers temporary files left in $K"
    tensors_equal "$R/adapter.safetensors" "$K/adapter.safetensors" \
        && pass "SIG$sig: resumed adapter = uninterrupted" || fail "SIG$sig: resumed adapter differs"
    rows=$(grep -c "^$STEPS," "$K/train.csv")
    [ "$rows" -eq 1 ] && pass "SIG$sig: train.csv has step $STEPS once" || fail "SIG$sig: step $STEPS appears $rows times in train.csv"
done
finish
