#!/usr/bin/env bash
# cli_mpi_commands.sh STEER REPO — `--mpi` of analyze-mlp, icl and capture
# --data under mpirun on localhost (docs/SCALING.md; the sweep's is
# cli_mpi.sh), on stories260K and tiny item counts: 1, 2 and 3 ranks write
# byte for byte the files of the plain one-process run (JSON summaries and
# safetensors metadata equal but for "command" and "wall_s"), the items'
# per-rank counts sum to the items, and a rank killed with SIGKILL when its
# first item arrives (test hook STEER_MPI_TEST_KILL=RANK:K, shared by every
# command through tools/mpi) leaves rank 0 naming the missing item, exiting
# 1 and writing nothing; the same command run again writes the plain
# files; an icl rank killed while rank 0 still trains alone (RANK:wait)
# holds no item, so the others finish and write the plain files. Skipped,
# with the reason, only when steer was built without MPI.
set -u
STEER=${1:?usage: cli_mpi_commands.sh STEER REPO}
REPO=${2:?usage: cli_mpi_commands.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
TRAIN=$REPO/tests/data/winogrande/train_m.jsonl
B=$REPO/models/stories260K/stories260K.bin
F=$REPO/models/stories260K-winogrande/stories260K-winogrande.bin
source "$(dirname "$0")/lib_cli.sh"
source "$(dirname "$0")/lib_mpi.sh"

# safetensors: the header without "command" (and its padding), the data
st_hdr() { local h; h=$(od -An -t u8 -N8 "$1" | tr -d ' '); head -c $((8 + h)) "$1" | tail -c +9 | sed -E 's/"command":"([^"\\]|\\.)*",?//; s/ +$//'; }
st_data() { local h; h=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((9 + h)) "$1"; }
# same_files DIR1 DIR2 NAME FILE...: each FILE byte-equal; *.json equal but
# for "command" and "wall_s"; *.safetensors equal but for "command"
same_files() {
    local a=$1 b=$2 name=$3 bad="" f
    shift 3
    for f in "$@"; do
        if [ ! -s "$a/$f" ] || [ ! -s "$b/$f" ]; then bad+=" $f(missing)"; continue; fi
        case $f in
        *.json) cmp -s <(grep -Ev '"(command|wall_s)"' "$a/$f") <(grep -Ev '"(command|wall_s)"' "$b/$f") ;;
        *.safetensors) cmp -s <(st_hdr "$a/$f") <(st_hdr "$b/$f") && cmp -s <(st_data "$a/$f") <(st_data "$b/$f") ;;
        *) cmp -s "$a/$f" "$b/$f" ;;
        esac || bad+=" $f"
    done
    [ -z "$bad" ] && pass "$name: $# files equal" || fail "$name: differ:$bad"
}
# counts NP TOTAL NAME: rank 0's "items computed per rank" line (in
# $TMP/stderr.txt) has NP ranks summing to TOTAL, each with at least one
counts() {
    local line c total=0 idle=0 r=0
    line=$(grep "items computed per rank" "$TMP/stderr.txt")
    for c in $(echo "$line" | grep -Eo ' [0-9]+:[0-9]+' | cut -d: -f2); do
        total=$((total + c)); [ "$c" -eq 0 ] && idle=$((idle + 1)); r=$((r + 1))
    done
    [ $r -eq "$1" ] && [ $total -eq "$2" ] && [ $idle -eq 0 ] && pass "$3: every rank computed, $2 in all ($line)" ||
        fail "$3: per-rank counts '$line' (want $1 ranks, $2 items, none idle)"
}
# run3 KILL CMD...: 3 ranks, STEER_MPI_TEST_KILL=KILL, --enable-recovery (as
# cli_mpi.sh: Open MPI 4 otherwise ends the job when a rank dies); each
# rank's exit status "r0:r1:r2" in $RC (mpirun's own is 0 regardless)
run3() {
    local kill=$1
    shift
    rm -rf "$TMP/rc"; mkdir -p "$TMP/rc"
    STEER_MPI_TEST_KILL=$kill "${MPIRUN[@]}" --enable-recovery -x STEER_MPI_TEST_KILL -np 3 \
        bash -c '"$@"; echo $? > "'"$TMP"'/rc/$OMPI_COMM_WORLD_RANK"' _ "$@" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
    RC=$(cat "$TMP/rc/0" 2>/dev/null):$(cat "$TMP/rc/1" 2>/dev/null):$(cat "$TMP/rc/2" 2>/dev/null)
}
# killed NAME DIR CMD...: rank 2 of 3 killed at its first item: rank 0 exits
# 1 naming one missing item, rank 1 finishes, DIR stays empty
killed() {
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    run3 2:0 "$@"
    [ "$RC" = "1:0:137" ] && pass "$name, rank 2 killed: ranks exit 1, 0, 137" ||
        fail "$name, rank 2 killed: exit statuses '$RC': $(grep steer "$TMP/stderr.txt")"
    has "$TMP/stderr.txt" "rank 2 sent nothing for 3 s: lost, with 1 item\(s\) in flight" "$name: rank 2 reported lost"
    has "$TMP/stderr.txt" "^steer [a-z-]+: 1 item\(s\) missing, handed to 1 lost rank\(s\): [^;]+; nothing was written" \
        "$name: rank 0 names the missing item"
    [ -z "$(ls -A "$dir")" ] && pass "$name: nothing written" || fail "$name: wrote $(ls -A "$dir")"
}

# ---------------------------------------------------------------- analyze-mlp
ok "export 8 items" "$STEER" data export "winogrande:$DEV" --n 8 -o "$TMP/wg8.jsonl"
ok "oracle vectors" "$STEER" extract --method oracle-mean -m "$B" --ft "$F" --pos "$TMP/wg8.jsonl" --token all \
    --sites attn_out,mlp_in -o "$TMP/v.safetensors"
AM=("$STEER" analyze-mlp -m "$B" -m "$F" --data "winogrande:$DEV" --n 5 --token 2 --vectors "$TMP/v.safetensors" -q)
AMF=(mlp_stats.csv hist.csv attenuation.csv mlp_summary.json)
ok "analyze-mlp, plain" "${AM[@]}" --out "$TMP/am"
for np in 1 2 3; do
    ok "mpirun -np $np analyze-mlp --mpi" "${MPIRUN[@]}" -np $np "${AM[@]}" --mpi --progress --out "$TMP/am$np"
    same_files "$TMP/am" "$TMP/am$np" "analyze-mlp -np $np = plain" "${AMF[@]}"
    counts $np 10 "analyze-mlp -np $np"
done

# ---------------------------------------------------------------- icl
IC=("$STEER" icl -m "$F" --data "winogrande:$DEV" --pool "winogrande:$TRAIN" --shots 1 --n 4 --n-train 3 --steps 2
    --batch 2 -q)
ICF=(icl.csv icl_layers.csv items_icl.csv summary_icl.json mean_delta.safetensors learned.safetensors)
ok "icl, plain" "${IC[@]}" --out "$TMP/icl"
for np in 1 2 3; do
    ok "mpirun -np $np icl --mpi" "${MPIRUN[@]}" -np $np "${IC[@]}" --mpi --progress --out "$TMP/icl$np"
    same_files "$TMP/icl" "$TMP/icl$np" "icl -np $np = plain" "${ICF[@]}"
    counts $np 4 "icl -np $np"
done
killed "icl" "$TMP/iclk" "${IC[@]}" --mpi --mpi-timeout 3 --out "$TMP/iclk"
ok "icl rerun, 2 ranks" "${MPIRUN[@]}" -np 2 "${IC[@]}" --mpi --out "$TMP/iclk"
same_files "$TMP/icl" "$TMP/iclk" "icl killed + rerun = plain" "${ICF[@]}"
# Rank 2 killed right after its first request, while rank 0 still trains
# alone (made to last 4 s by STEER_MPI_TEST_PUBLISH_DELAY): it held nothing,
# so ranks 0 and 1 finish and write the plain files.
MPIRUN0=("${MPIRUN[@]}")
export STEER_MPI_TEST_PUBLISH_DELAY=4
MPIRUN+=(-x STEER_MPI_TEST_PUBLISH_DELAY)
run3 2:wait "${IC[@]}" --mpi --mpi-timeout 3 --out "$TMP/iclw"
unset STEER_MPI_TEST_PUBLISH_DELAY
MPIRUN=("${MPIRUN0[@]}")
[ "$RC" = "0:0:137" ] && pass "icl, rank 2 killed while rank 0 trains: ranks exit 0, 0, 137" ||
    fail "icl, rank 2 killed while rank 0 trains: exit statuses '$RC': $(grep steer "$TMP/stderr.txt")"
has "$TMP/stderr.txt" "rank 2 sent nothing for 3 s: lost, with 0 item\(s\) in flight" "icl: rank 2 reported lost"
same_files "$TMP/icl" "$TMP/iclw" "icl with rank 2 lost while rank 0 trains = plain" "${ICF[@]}"

# ---------------------------------------------------------------- capture --data (7 prompts, batches of 2)
ok "export 7 items" "$STEER" data export "winogrande:$DEV" --n 7 -o "$TMP/wg7.jsonl"
for pos in all mean; do
    CA=("$STEER" capture -m "$B" --data "jsonl:$TMP/wg7.jsonl" --batch 2 --sites resid_post,mlp_act --layers 0,-1
        --positions $pos)
    mkdir -p "$TMP/ca"
    ok "capture --positions $pos, plain" "${CA[@]}" -q -o "$TMP/ca/$pos.safetensors"
    for np in 1 2 3; do
        mkdir -p "$TMP/ca$np"
        ok "mpirun -np $np capture --positions $pos --mpi" "${MPIRUN[@]}" -np $np "${CA[@]}" --mpi \
            -o "$TMP/ca$np/$pos.safetensors"
        same_files "$TMP/ca" "$TMP/ca$np" "capture $pos -np $np = plain" $pos.safetensors
        [ $pos = all ] && counts $np 4 "capture -np $np (4 batches)"
    done
done
killed "capture" "$TMP/cak" "${CA[@]}" --mpi --mpi-timeout 3 -o "$TMP/cak/mean.safetensors"
mkdir -p "$TMP/cak"
ok "capture rerun, 3 ranks" "${MPIRUN[@]}" -np 3 "${CA[@]}" --mpi -q -o "$TMP/cak/mean.safetensors"
same_files "$TMP/ca" "$TMP/cak" "capture killed + rerun = plain" mean.safetensors

# ---------------------------------------------------------------- usage
mkdir -p "$TMP/out"
expect_fail "capture --mpi without --prompts/--data" "--mpi goes with --prompts or --data" \
    "$STEER" capture -m "$B" -p Once --mpi -o "$TMP/out/x.safetensors"
expect_fail "analyze-mlp --mpi-timeout 0" "--mpi-timeout must be > 0" \
    "${AM[@]}" --mpi --mpi-timeout 0 --out "$TMP/out/r"
finish
