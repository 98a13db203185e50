#!/usr/bin/env bash
# cli_interrupt.sh STEER REPO — interrupted writers leave nothing (issue 22).
# STEER_TEST_INTERRUPT_AT_TMP=K makes the library raise SIGINT right after the
# K-th temporary file or directory of the process is registered
# (src/base/cleanup.c), so the interrupt falls at a known point of the write
# instead of after a guessed delay. For 16 writing commands (convert to GGUF,
# HF and llama2.c, extract, vec scale/export, capture, train, sweep, tune,
# make-model, make-random, data export, patch, analyze-mlp, report) and K = 1, 2:
# the process dies of SIGINT (exit 130) or, when it has fewer temporaries,
# finishes (0); either way no *.tmp.* / *.conv.* file or directory is left,
# and a finished run left its outputs. Then: temporaries of a dead writer
# (another pid) are removed by the next run writing the same output, a live
# writer's are kept; train on SIGINT checkpoints and resumes.
set -u
STEER=${1:?usage: cli_interrupt.sh STEER REPO}
REPO=${2:?usage: cli_interrupt.sh STEER REPO}
B=$REPO/models/stories260K/stories260K.bin
F=$REPO/models/stories260K-winogrande/stories260K-winogrande.bin
DEV=$REPO/tests/data/winogrande/dev.jsonl
D=$REPO/tests/data/tune
source "$(dirname "$0")/lib_cli.sh"
W=$TMP/w
V=$TMP/v.safetensors
"$STEER" extract -m "$B" --data "$D/ab_train.jsonl" --site resid_post --token answer -o "$V" >/dev/null 2>&1 ||
    fail "extract for the fixture"
"$STEER" tune -m "$B" -v "$V" --data "$D/ab_dev.jsonl" -n 2 --scales 0,1 --layers 1 -o "$TMP/rsrc" -q ||
    fail "tune for the report fixture"

# name | command (output under $W/o)
cmds=(
    "convert gguf|convert $REPO/tests/data/gemma2/hf $W/o/x.gguf"
    "convert hf|convert $B $W/o/hf"
    "convert llama2c|convert $REPO/models/stories260K/stories260K.gguf $W/o/m.bin"
    "extract|extract -m $B --data $D/ab_train.jsonl --site resid_post --token answer -o $W/o/v.safetensors"
    "vec scale|vec scale $V 2 -o $W/o/v2.safetensors"
    "capture|capture -m $B -p Hello --sites resid_post --layers 1 -o $W/o/c.safetensors"
    "train|train -m $B --data winogrande:$DEV --method vector --steps 2 --batch 2 --out $W/o/t --quiet"
    "sweep|sweep --base $B --ft $F --data winogrande:$DEV --n 2 --sites mlp_in --layers 1 --alphas 0,1 --tokens 2 --out $W/o/s --quiet"
    "tune|tune -m $B -v $V --data $D/ab_dev.jsonl --n 2 --scales 0,1 --layers 1 -o $W/o/tu --quiet"
    "make-model|make-model --arch llama -o $W/o/mm"
    "data export|data export winogrande:$DEV --n 3 -o $W/o/d.jsonl"
    "make-random|make-random --d 64 --ff 128 --heads 4 --kv-heads 2 --vocab 300 -o $W/o/r.gguf"
    "vec export|vec export --llamacpp $V --layers 1-4 -o $W/o/cv.gguf"
    "patch|patch -m $B --clean cat --corrupted dog --metric kl --layers 1 -o $W/o/p -q"
    "analyze-mlp|analyze-mlp -m $B --data winogrande:$DEV --n 2 --layers 1 -o $W/o/a -q"
    "report|report $TMP/rsrc -o $W/o/report.html"
)
for entry in "${cmds[@]}"; do
    name=${entry%%|*}
    args=${entry#*|}
    for k in 1 2; do
        rm -rf "$W"
        mkdir -p "$W/o"
        # shellcheck disable=SC2086
        STEER_TEST_INTERRUPT_AT_TMP=$k "$STEER" $args >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
        rc=$?
        left=$(find "$W" -name '*.tmp.*' -o -name '*.conv.*' | head -3)
        if [ "$rc" -ne 130 ] && [ "$rc" -ne 0 ]; then
            fail "$name, interrupt at temporary $k: exit $rc ($(head -c 300 "$TMP/stderr.txt"))"
        elif [ -n "$left" ]; then
            fail "$name, interrupt at temporary $k: left $left"
        elif [ "$rc" -eq 0 ] && [ -z "$(ls -A "$W/o")" ]; then
            fail "$name: finished (fewer than $k temporaries) but wrote nothing"
        else
            pass "$name, interrupt at temporary $k: exit $rc, no temporaries left"
        fi
    done
done

# A dead writer's leftovers (a pid that has exited) go on the next run; a
# live one's (this shell's pid) stay.
dead=$(sh -c 'echo $$')
rm -rf "$W" && mkdir -p "$W/o/hf.tmp.$dead" "$W/o/hf.tmp.$$"
echo x >"$W/o/hf.tmp.$dead/config.json"
echo x >"$W/o/x.gguf.conv.$dead"
echo x >"$W/o/x.gguf.conv.$dead.tmp.$dead"
echo x >"$W/o/v.safetensors.tmp.$dead"
ok "convert hf after a dead run" "$STEER" convert "$B" "$W/o/hf"
ok "convert gguf after a dead run" "$STEER" convert "$REPO/tests/data/gemma2/hf" "$W/o/x.gguf"
ok "vec scale after a dead run" "$STEER" vec scale "$V" 2 -o "$W/o/v.safetensors"
[ ! -e "$W/o/hf.tmp.$dead" ] && pass "dead writer's directory removed" || fail "hf.tmp.$dead left"
[ ! -e "$W/o/x.gguf.conv.$dead" ] && [ ! -e "$W/o/x.gguf.conv.$dead.tmp.$dead" ] &&
    pass "dead writer's conversion files removed" || fail "x.gguf.conv.$dead* left"
[ ! -e "$W/o/v.safetensors.tmp.$dead" ] && pass "dead writer's FILE.tmp.<pid> removed" || fail "v.safetensors.tmp left"
[ -d "$W/o/hf.tmp.$$" ] && pass "a live writer's directory is kept" || fail "live writer's directory removed"
# train: SIGINT after an update (seen in its --progress lines, not after a
# delay) finishes that update, writes the checkpoint and exits 130; --resume
# then continues from it although the run had no --eval-every.
T=$TMP/train
"$STEER" train -m "$B" --data "winogrande:$DEV" --method vector --steps 400 --batch 2 --threads 1 -o "$T" \
    --progress >/dev/null 2>"$TMP/train.err" &
pid=$!
for _ in $(seq 1 600); do grep -q '^step 3/' "$TMP/train.err" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] && pass "train: SIGINT -> exit 130" || fail "train: SIGINT -> exit $rc"
has "$TMP/train.err" "interrupted after update [0-9]+: checkpoint written" "train says where it stopped"
[ -s "$T/state.safetensors" ] && [ -s "$T/adapter.safetensors" ] && pass "checkpoint and state written" ||
    fail "no checkpoint after the interrupt: $(ls "$T")"
done_steps=$(grep -o 'interrupted after update [0-9]*' "$TMP/train.err" | grep -o '[0-9]*$')
ok "train --resume after the interrupt" "$STEER" train -m "$B" --data "winogrande:$DEV" --method vector --steps 400 \
    --batch 2 --threads 1 -o "$T" --resume --stop-after $((done_steps + 2)) --quiet
last=$(tail -1 "$T/train.csv" | cut -d, -f1)
rows=$(($(wc -l <"$T/train.csv") - 1))
[ "$last" = "$((done_steps + 2))" ] && [ "$rows" = "$last" ] &&
    pass "resumed: train.csv runs 1..$last without a gap" || fail "train.csv ends at $last with $rows rows"
[ -z "$(find "$T" -name '*.tmp.*')" ] && pass "no temporaries in the training directory" || fail "temporaries left"
ok "eval --threads 1" "$STEER" eval -m "$B" --data "winogrande:$DEV" -n 4 --threads 1
finish
