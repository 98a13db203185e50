#!/usr/bin/env bash
# cli_mpi.sh STEER REPO — `steer sweep --mpi` under mpirun on localhost
# (docs/SCALING.md), stories260K vs its Winogrande fine-tune on a few dev
# items: 1, 2 and 3 ranks give byte for byte the dkl.csv and items.csv of the
# plain one-process sweep (summary.json equal but for "command" and
# "wall_s"), every rank computing items (rank 0 serves every other rank's
# first request before taking its own); a rank killed with SIGKILL when its
# first item arrives (test hook STEER_MPI_TEST_KILL=RANK:K): the
# others finish, rank 0 names the missing item and exits 1, and the same
# command run again computes only that item (counted in the journal) and
# gives the plain files; a rank that dies while it loads (RANK:load) holds
# no item: the others compute all, rank 0 says none is missing, exits 0 and
# writes the plain files; a rank whose set-up fails (a --base that does not
# exist) takes no part and exits 1 after the others, who finish (with a
# third rank killed holding item 0: exactly item 0 missing, and the rerun
# computes only it). Skipped, with the reason, only when steer was built
# without MPI.
set -u
STEER=${1:?usage: cli_mpi.sh STEER REPO}
REPO=${2:?usage: cli_mpi.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
source "$(dirname "$0")/lib_mpi.sh"


ok "plain sweep, $N items" "${SW[@]}" --out "$TMP/plain"

for np in 1 2 3; do
    ok "mpirun -np $np sweep --mpi" "${MPIRUN[@]}" -np $np "${SW[@]}" --mpi --progress --out "$TMP/np$np"
    same "$TMP/plain" "$TMP/np$np" "-np $np = plain sweep"
    [ "$(grep -c '"item"' "$TMP/np$np/progress.jsonl")" -eq $N ] && pass "-np $np: one journal, $N items" ||
        fail "-np $np: journal has $(grep -c '"item"' "$TMP/np$np/progress.jsonl") items"
    # "items computed per rank: 0:a 1:b 2:c" — all of them, some by ranks > 0
    line=$(grep "items computed per rank" "$TMP/stderr.txt")
    counts=$(echo "$line" | grep -Eo ' [0-9]+:[0-9]+' | cut -d: -f2)
    total=0; idle=0; r=0
    for c in $counts; do total=$((total + c)); [ "$c" -eq 0 ] && idle=$((idle + 1)); r=$((r + 1)); done
    [ $r -eq $np ] && [ $total -eq $N ] && pass "-np $np: per-rank counts sum to $N ($line)" ||
        fail "-np $np: per-rank counts: '$line'"
    [ $idle -eq 0 ] && pass "-np $np: every rank computed items" || fail "-np $np: $idle rank(s) computed nothing"

done

# A lost rank. --enable-recovery: Open MPI 4 otherwise ends the whole job
# when a rank dies (then the rerun below still works, from the journal).
# mpirun itself exits 0 under --enable-recovery, so each rank's status is
# taken by a wrapper.
K=$TMP/kill
mkdir -p "$TMP/rc"
STEER_MPI_TEST_KILL=2:0 "${MPIRUN[@]}" --enable-recovery -x STEER_MPI_TEST_KILL -np 3 \
    bash -c '"$@"; echo $? > "'"$TMP"'/rc/$OMPI_COMM_WORLD_RANK"' _ \
    "${SW[@]}" --mpi --mpi-timeout 3 --out "$K" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
[ "$(cat "$TMP/rc/0" 2>/dev/null)" = 1 ] && pass "killed rank: rank 0 exits 1" ||
    fail "killed rank: rank 0 exit status '$(cat "$TMP/rc/0" 2>/dev/null)': $(cat "$TMP/stderr.txt")"
[ "$(cat "$TMP/rc/2" 2>/dev/null)" = 137 ] && pass "killed rank: rank 2 died of SIGKILL" ||
    fail "killed rank: rank 2 status '$(cat "$TMP/rc/2" 2>/dev/null)'"
[ "$(cat "$TMP/rc/1" 2>/dev/null)" = 0 ] && pass "killed rank: rank 1 finished (exit 0)" ||
    fail "killed rank: rank 1 status '$(cat "$TMP/rc/1" 2>/dev/null)'"
has "$TMP/stderr.txt" "rank 2 sent nothing for 3 s: lost, with 1 item\(s\) in flight" "rank 0 reports rank 2 lost"
missing=$(grep -Eo '1 item\(s\) missing, handed to 1 lost rank\(s\): [0-9]+;' "$TMP/stderr.txt" | grep -Eo '[0-9]+;' | tr -d ';')
[ -n "$missing" ] && pass "rank 0 names the missing item ($missing)" ||
    fail "no 'missing' line: $(cat "$TMP/stderr.txt")"
[ ! -e "$K/dkl.csv" ] && pass "no dkl.csv while an item is missing" || fail "dkl.csv written with an item missing"
before=$(grep -c '"item"' "$K/progress.jsonl")
[ "$before" -eq $((N - 1)) ] && pass "journal: $before of $N items" || fail "journal: $before items, want $((N - 1))"
grep -q "\"item\":$missing," "$K/progress.jsonl" && fail "missing item $missing is in the journal" ||
    pass "missing item $missing is not in the journal"
ok "rerun, 2 ranks" "${MPIRUN[@]}" -np 2 "${SW[@]}" --mpi --progress --out "$K"
after=$(grep -c '"item"' "$K/progress.jsonl")
[ $((after - before)) -eq 1 ] && pass "rerun computed only the missing item (journal $before -> $after)" ||
    fail "rerun computed $((after - before)) items, want 1"
has "$TMP/stderr.txt" "items computed per rank: 0:[01] 1:[01]$" "rerun: the ranks computed one item in all"
grep -q "\"item\":$missing," "$K/progress.jsonl" && pass "item $missing now in the journal" ||
    fail "item $missing still missing"
same "$TMP/plain" "$K" "killed + rerun = plain sweep"

# A rank lost during the set-up (it dies while loading the models: test hook
# STEER_MPI_TEST_KILL=2:load, SIGKILL from its heartbeat thread as it
# starts) holds no item: rank 0 takes it for lost after --mpi-timeout
# without its heartbeat, ranks 0 and 1 compute every item, nothing is
# missing, so rank 0 writes the whole result and exits 0 (decided: the
# result is complete; the line says which rank took no part). The rerun
# then has nothing to compute.
# run3 KILL BAD OUT: 3 ranks, --enable-recovery, STEER_MPI_TEST_KILL=KILL,
# rank BAD (or none: -) given a --base that does not exist (its set-up
# fails as a node without the model's file would); each rank's exit status
# in $TMP/rc/RANK.
run3() {
    rm -rf "$TMP/rc"; mkdir -p "$TMP/rc"
    STEER_MPI_TEST_KILL=$1 "${MPIRUN[@]}" --enable-recovery -x STEER_MPI_TEST_KILL -np 3 \
        bash -c 'r=$OMPI_COMM_WORLD_RANK; [ "$r" = "'"$2"'" ] && set -- "${@/#$0/$0.missing}"; "$@"; echo $? >"'"$TMP"'/rc/$r"' \
        "$B" "${SW[@]}" --mpi --mpi-timeout 3 --progress --out "$3" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
}
# rcs: "r0 r1 r2"
rcs() { echo "$(cat "$TMP/rc/0" 2>/dev/null) $(cat "$TMP/rc/1" 2>/dev/null) $(cat "$TMP/rc/2" 2>/dev/null)"; }
# journal DIR: the number of items in DIR/progress.jsonl

L=$TMP/lostload
run3 2:load - "$L"
[ "$(rcs)" = "0 0 137" ] && pass "rank 2 died while loading: ranks 0 1 2 exit 0 0 137" ||
    fail "rank 2 died while loading: exit statuses '$(rcs)', want '0 0 137': $(cat "$TMP/stderr.txt")"
has "$TMP/stderr.txt" "rank 2 sent nothing for 3 s during its set-up: lost, it computes nothing" \
    "rank 0 reports rank 2 lost during the set-up"
has "$TMP/stderr.txt" "no item missing: rank\(s\) 2 \(lost\) took no part since the set-up" "rank 0: no item missing"
grep -q "item(s) missing, handed" "$TMP/stderr.txt" && fail "a 'missing' line: $(cat "$TMP/stderr.txt")" ||
    pass "no 'item(s) missing' line"
has "$TMP/stderr.txt" "items computed per rank: 0:[1-7] 1:[1-7] 2:0$" "ranks 0 and 1 computed the items, rank 2 none"
line=$(grep "items computed per rank" "$TMP/stderr.txt")
[ $(( $(echo "$line" | grep -Eo ' [0-9]+:[0-9]+' | cut -d: -f2 | paste -sd+) )) -eq $N ] &&
    pass "the per-rank counts sum to $N ($line)" || fail "per-rank counts: '$line'"
[ "$(journal "$L")" -eq $N ] && pass "journal: all $N items" || fail "journal: $(journal "$L") items, want $N"
same "$TMP/plain" "$L" "rank lost while loading = plain sweep"
ok "rerun after the loss while loading, 2 ranks" "${MPIRUN[@]}" -np 2 "${SW[@]}" --mpi --progress --out "$L"
[ "$(journal "$L")" -eq $N ] && pass "rerun computed nothing (journal stays at $N)" ||
    fail "rerun: journal has $(journal "$L") items, want $N"
has "$TMP/stderr.txt" "items computed per rank: 0:0 1:0$" "rerun: 0 items computed"
same "$TMP/plain" "$L" "rank lost while loading + rerun = plain sweep"

# A rank whose set-up fails (rank 1: its --base does not exist) takes no
# part but waits, heartbeating, for the others and exits 1 with its own
# message; meanwhile rank 2 is killed holding its first item (2:0), which
# is item 0 (with rank 1 out, rank 2's first request is the only one
# rank 0 serves before taking its own first item): exactly item 0 is
# missing, rank 0 exits 1 naming it, and the rerun computes only item 0.
E=$TMP/failload
run3 2:0 1 "$E"
[ "$(rcs)" = "1 1 137" ] && pass "rank 1 failed its set-up, rank 2 killed: ranks 0 1 2 exit 1 1 137" ||
    fail "failed set-up + kill: exit statuses '$(rcs)', want '1 1 137': $(cat "$TMP/stderr.txt")"
has "$TMP/stderr.txt" "stories260K.bin.missing: " "rank 1 says why its set-up failed"
has "$TMP/stderr.txt" "rank 1 failed during its set-up \(its own message says why\): it computes nothing" \
    "rank 0 reports rank 1 failed during the set-up"
has "$TMP/stderr.txt" "rank 2 sent nothing for 3 s: lost, with 1 item\(s\) in flight" "rank 0 reports rank 2 lost"
has "$TMP/stderr.txt" "1 item\(s\) missing, handed to 1 lost rank\(s\): 0; the other 7 item\(s\) are in" \
    "rank 0 names the one missing item: 0"
has "$TMP/stderr.txt" "items computed per rank: 0:7 1:0 2:0$" "rank 0 computed the other 7 items"
[ ! -e "$E/dkl.csv" ] && pass "no dkl.csv while item 0 is missing" || fail "dkl.csv written with an item missing"
[ "$(journal "$E")" -eq $((N - 1)) ] && ! grep -q '"item":0,' "$E/progress.jsonl" &&
    pass "journal: $((N - 1)) items, not item 0" || fail "journal: $(journal "$E") items (item 0 in it?)"
ok "rerun after the failed set-up, 2 ranks" "${MPIRUN[@]}" -np 2 "${SW[@]}" --mpi --progress --out "$E"
[ "$(journal "$E")" -eq $N ] && grep -q '"item":0,' "$E/progress.jsonl" &&
    pass "rerun computed exactly item 0 (journal $((N - 1)) -> $N)" || fail "rerun: journal $(journal "$E") items"
has "$TMP/stderr.txt" "items computed per rank: 0:[01] 1:[01]$" "rerun: one item computed in all"
same "$TMP/plain" "$E" "failed set-up + kill + rerun = plain sweep"

# a journal from a one-process run resumes under MPI and vice versa
ok "plain, stopped after 5" "${SW[@]}" --stop-after-items 5 --out "$TMP/mix"
ok "mpirun -np 2 resumes it" "${MPIRUN[@]}" -np 2 "${SW[@]}" --mpi --out "$TMP/mix"
same "$TMP/plain" "$TMP/mix" "plain 5 + MPI rest = plain sweep"
finish
