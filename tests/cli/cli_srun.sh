#!/usr/bin/env bash
# cli_srun.sh STEER REPO — `steer sweep --mpi` under Slurm (docs/SCALING.md,
# "Slurm"), on a private one-node Slurm that the test starts on localhost
# (munged, slurmctld, slurmd: configuration, state, sockets and logs under
# its temporary directory, its own ports; killed on exit). Debian 12's
# Slurm 22.05 and Open MPI 4.1 (srun --mpi=pmix), stories260K vs its
# Winogrande fine-tune on 8 dev items, as cli_mpi.sh:
#   - `srun -n 2 --mpi=pmix … --mpi` writes byte for byte the plain
#     one-process dkl.csv and items.csv (summary.json equal but for
#     command and wall_s), both ranks computing;
#   - under srun, a rank whose set-up fails (its --base does not exist)
#     takes no part; the others compute every item and write the plain
#     files (rank 0 exits 0), the failed rank exits 1 after them;
#   - under srun, a rank killed (SIGKILL, test hook STEER_MPI_TEST_KILL)
#     ends the whole job step (Slurm's mpi/pmix plugin kills the step when
#     a task's PMIx connection is lost): the journal keeps the K items
#     finished, and the same command run again computes exactly the other
#     N − K and writes the plain files;
#   - inside an allocation (salloc -n 3), `mpirun --enable-recovery` with a
#     rank killed holding its first item: the others finish, rank 0 exits 1
#     naming that item, and the rerun (srun) computes only it;
#   - the job-array recipe without MPI: `sbatch --array=0-2` of
#     `steer sweep --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`,
#     one task resubmitted alone (`--array=1`, SHARDS=3 given), then
#     `steer merge`, gives the plain files.
# Skipped, with the reason, when steer was built without MPI, when Slurm or
# munge is not installed (scripts/setup.sh installs them) or when not root.
set -u
STEER=${1:?usage: cli_srun.sh STEER REPO}
REPO=${2:?usage: cli_srun.sh STEER REPO}
STEER=$(readlink -f "$STEER")
REPO=$(readlink -f "$REPO")
source "$(dirname "$0")/lib_cli.sh"
source "$(dirname "$0")/lib_mpi.sh"
for c in srun sbatch salloc squeue sinfo scancel slurmctld slurmd munged; do
    command -v $c >/dev/null || PATH=$PATH:/usr/sbin command -v $c >/dev/null || {
        echo "SKIPPED: slurm (srun/slurmctld/slurmd/munged) not installed (Debian: slurmctld slurmd slurm-client munge; scripts/setup.sh installs them)"
        exit 0
    }
done
export PATH=$PATH:/usr/sbin
[ "$(id -u)" = 0 ] || { echo "SKIPPED: slurm: slurmd must run as root to start jobs, and this is uid $(id -u)"; exit 0; }

# ---------------------------------------------------------------- a private Slurm
S=$TMP/slurm
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge"
chmod 700 "$S/munge"
PIDS=()
cleanup() {
    [ -e "$S/ctld.up" ] && timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
# Nothing from an outer Slurm job (this test may run inside one).
for v in $(compgen -e | grep '^SLURM_'); do unset "$v"; done
export SLURM_CONF=$S/slurm.conf

# wait_for SECONDS CMD...: until CMD succeeds, at most SECONDS (a bounded
# wait on a condition, polled every 0.1 s).
wait_for() {
    local n=$(($1 * 10))
    shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
    return 1
}
# A port no socket uses (listening or not) on this machine, from a random start.
port_used() { awk -v p="$(printf ':%04X' "$1")" '$2 ~ p"$" {f=1} END {exit !f}' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
free_port() {
    local p=$((20000 + (RANDOM * 32768 + RANDOM + $$) % 40000))
    while port_used $p || port_used $((p + 1)); do p=$((p + 2)); [ $p -gt 65000 ] && p=20000; done
    echo $p
}
show_logs() { for f in "$S"/log/*; do echo "     --- $f"; tail -15 "$f" | sed 's/^/     | /'; done; }

dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$S/munge/munge.key"
munged -F --force --socket="$S/munge/sock" --key-file="$S/munge/munge.key" --pid-file="$S/munge/pid" \
    --seed-file="$S/munge/seed" --log-file="$S/log/munged.log" >"$S/log/munged.out" 2>&1 &
PIDS+=($!)
wait_for 30 test -S "$S/munge/sock" || { fail "munged did not start"; show_logs; finish; }

HOST=$(hostname -s)
NCPU=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
# write_conf PORT: slurm.conf with slurmctld on PORT, slurmd on PORT + 1
write_conf() {
    cat >"$SLURM_CONF" <<EOF
ClusterName=steertest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$(($1 + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/sock
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU State=UNKNOWN
PartitionName=steertest Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}
# The node idle, or a daemon gone (say a port taken meanwhile: then again
# with other ports, up to 3 times).
node_idle() { [ "$(sinfo -h -n "$HOST" -o %t 2>/dev/null)" = idle ]; }
daemon_gone() { ! kill -0 "$CTLD" 2>/dev/null || ! kill -0 "$SLURMD" 2>/dev/null; }
up_or_gone() { node_idle || daemon_gone; }
started=""
for attempt in 1 2 3; do
    PORT=$(free_port)
    write_conf "$PORT"
    slurmctld -D -i -f "$SLURM_CONF" >>"$S/log/slurmctld.out" 2>&1 &
    CTLD=$!
    PIDS+=($CTLD)
    touch "$S/ctld.up"
    slurmd -D -N "$HOST" -f "$SLURM_CONF" >>"$S/log/slurmd.out" 2>&1 &
    SLURMD=$!
    PIDS+=($SLURMD)
    wait_for 60 up_or_gone
    if node_idle && ! daemon_gone; then started=1; break; fi
    kill "$CTLD" "$SLURMD" 2>/dev/null
    wait "$CTLD" "$SLURMD" 2>/dev/null
done
if [ -n "$started" ]; then pass "private Slurm up: $HOST idle (ports $PORT, $((PORT + 1)), $NCPU CPUs, try $attempt)"; else
    fail "private Slurm: node $HOST not idle after 3 tries (sinfo: '$(sinfo -h -o '%n %t' 2>&1)')"
    show_logs
    finish
fi
srun --mpi=list 2>&1 | grep -qw pmix && pass "srun --mpi=list has pmix" ||
    { fail "srun has no pmix plugin: $(srun --mpi=list 2>&1 | tr '\n' ' ')"; finish; }

# Open MPI's transport for these ranks as in lib_mpi.sh (srun exports the
# environment to the tasks).
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
SRUN=(timeout 300 srun --time=5 --overcommit --mpi=pmix --kill-on-bad-exit=0)

# ---------------------------------------------------------------- the sweeps
# per_rank: the counts of rank 0's "items computed per rank" line, "a b ..."
per_rank() { grep "items computed per rank" "$TMP/stderr.txt" | grep -Eo ' [0-9]+:[0-9]+' | cut -d: -f2 | tr '\n' ' ' | sed 's/ $//'; }
sum() { local s=0 c; for c in $1; do s=$((s + c)); done; echo $s; }

ok "plain sweep, $N items" "${SW[@]}" --out "$TMP/plain"

# srun -n 2
ok "srun -n 2 --mpi=pmix sweep --mpi" "${SRUN[@]}" -n 2 "${SW[@]}" --mpi --progress --out "$TMP/s2"
same "$TMP/plain" "$TMP/s2" "srun -n 2 = plain sweep"
c=$(per_rank)
[ "$(echo "$c" | wc -w)" -eq 2 ] && [ "$(sum "$c")" -eq $N ] && ! echo " $c " | grep -q ' 0 ' &&
    pass "srun -n 2: both ranks computed, $N items in all ($c)" || fail "srun -n 2: per-rank counts '$c'"
[ "$(journal "$TMP/s2")" -eq $N ] && pass "srun -n 2: one journal, $N items" || fail "srun -n 2: journal $(journal "$TMP/s2")"

# srun -n 3, task 1's set-up fails (a node without the model's file); each
# task's exit status in $TMP/rc/TASK
rm -rf "$TMP/rc"; mkdir -p "$TMP/rc"
"${SRUN[@]}" -n 3 bash -c 'r=$SLURM_PROCID; [ "$r" = 1 ] && set -- "${@/#$0/$0.missing}"; "$@"; s=$?; echo $s >"'"$TMP"'/rc/$r"; exit $s' \
    "$B" "${SW[@]}" --mpi --mpi-timeout 5 --progress --out "$TMP/fail1" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
src=$?
rcs="$(cat "$TMP/rc/0" 2>/dev/null) $(cat "$TMP/rc/1" 2>/dev/null) $(cat "$TMP/rc/2" 2>/dev/null)"
[ "$rcs" = "0 1 0" ] && pass "srun, task 1's set-up failed: tasks 0 1 2 exit 0 1 0" ||
    fail "srun, task 1's set-up failed: exit statuses '$rcs', want '0 1 0': $(cat "$TMP/stderr.txt")"
[ $src -eq 1 ] && pass "srun, task 1's set-up failed: srun exits 1 (task 1's status)" || fail "srun exits $src, want 1"
has "$TMP/stderr.txt" "rank 1 failed during its set-up" "srun: rank 0 reports rank 1's failed set-up"
has "$TMP/stderr.txt" "no item missing: rank\(s\) 1 \(failed\) took no part" "srun: no item missing"
c=$(per_rank)
[ "$(sum "$c")" -eq $N ] && echo "$c" | grep -Eq '^[1-9][0-9]* 0 [1-9][0-9]*$' &&
    pass "srun: ranks 0 and 2 computed the $N items ($c)" || fail "srun, failed set-up: per-rank counts '$c'"
same "$TMP/plain" "$TMP/fail1" "srun, a rank's set-up failed = plain sweep"

# srun -n 3, task 2 killed when its first item arrives (every rank gets one:
# rank 0 serves the first requests before taking its own): Slurm ends the step
K=$TMP/kill
STEER_MPI_TEST_KILL=2:0 "${SRUN[@]}" -n 3 "${SW[@]}" --mpi --mpi-timeout 5 --out "$K" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
src=$?
[ $src -ne 0 ] && pass "srun, task 2 killed: srun exits $src" || fail "srun, task 2 killed: srun exits 0"
[ ! -e "$K/dkl.csv" ] && pass "srun, task 2 killed: no dkl.csv" || fail "srun, task 2 killed: dkl.csv written"
k=$(journal "$K")
[ "$k" -lt $N ] && pass "srun, task 2 killed: the journal keeps $k of $N items" || fail "journal has $k items"
ok "rerun of the killed srun step, srun -n 2" "${SRUN[@]}" -n 2 "${SW[@]}" --mpi --progress --out "$K"
c=$(per_rank)
[ "$(sum "$c")" -eq $((N - k)) ] && [ "$(journal "$K")" -eq $N ] &&
    pass "rerun computed exactly the $((N - k)) missing items ($c; journal $k -> $N)" ||
    fail "rerun computed '$c' (want $((N - k)) in all), journal $(journal "$K")"
same "$TMP/plain" "$K" "srun killed step + rerun = plain sweep"

# mpirun --enable-recovery inside an allocation: rank 2 killed holding its
# first item
M=$TMP/alloc
rm -rf "$TMP/rc"; mkdir -p "$TMP/rc"
STEER_MPI_TEST_KILL=2:0 timeout 300 salloc --quiet -n 3 --overcommit --time=5 \
    mpirun --allow-run-as-root --enable-recovery -x STEER_MPI_TEST_KILL -x ASAN_OPTIONS \
    bash -c '"$@"; echo $? >"'"$TMP"'/rc/$OMPI_COMM_WORLD_RANK"' _ \
    "${SW[@]}" --mpi --mpi-timeout 3 --out "$M" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
rcs="$(cat "$TMP/rc/0" 2>/dev/null) $(cat "$TMP/rc/1" 2>/dev/null) $(cat "$TMP/rc/2" 2>/dev/null)"
[ "$rcs" = "1 0 137" ] && pass "salloc + mpirun --enable-recovery, rank 2 killed: ranks exit 1 0 137" ||
    fail "salloc + mpirun: exit statuses '$rcs', want '1 0 137': $(cat "$TMP/stderr.txt")"
missing=$(grep -Eo '1 item\(s\) missing, handed to 1 lost rank\(s\): [0-9]+;' "$TMP/stderr.txt" | grep -Eo '[0-9]+;$' | tr -d ';')
[ -n "$missing" ] && [ "$(journal "$M")" -eq $((N - 1)) ] &&
    pass "salloc + mpirun: rank 0 names missing item $missing; journal $((N - 1)) items" ||
    fail "salloc + mpirun: missing '$missing', journal $(journal "$M"): $(cat "$TMP/stderr.txt")"
ok "rerun, srun -n 2" "${SRUN[@]}" -n 2 "${SW[@]}" --mpi --progress --out "$M"
[ "$(sum "$(per_rank)")" -eq 1 ] && grep -q "\"item\":$missing," "$M/progress.jsonl" &&
    pass "rerun computed only item $missing" || fail "rerun computed '$(per_rank)'"
same "$TMP/plain" "$M" "salloc + mpirun killed rank + rerun = plain sweep"

# ---------------------------------------------------------------- the job array, no MPI
A=$TMP/array
unset SHARDS
mkdir -p "$A"
# as docs/SCALING.md's script: SHARDS defaults to the array's size, and is
# given when one task is resubmitted alone (its SLURM_ARRAY_TASK_COUNT is 1)
cat >"$A/job.sh" <<EOF
#!/bin/bash
export OMP_NUM_THREADS=\$SLURM_CPUS_PER_TASK
SHARDS=\${SHARDS:-\$SLURM_ARRAY_TASK_COUNT}
exec $(printf '%q ' "${SW[@]}") --threads "\$SLURM_CPUS_PER_TASK" \\
    --shard "\$SLURM_ARRAY_TASK_ID/\$SHARDS" --out "$A/shard-\$SLURM_ARRAY_TASK_ID"
EOF
if timeout 300 sbatch --quiet --wait --array=0-2 --cpus-per-task=1 --time=5 -o "$A/job-%a.out" "$A/job.sh" \
    >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"; then pass "sbatch --array=0-2 --wait: every task exit 0"; else
    fail "sbatch --array: $(cat "$TMP/stderr.txt" "$A"/job-*.out 2>/dev/null | head -20)"
fi
n_sh=0
for i in 0 1 2; do
    j=$(journal "$A/shard-$i")
    [ "$j" -eq $(((N - i + 2) / 3)) ] && n_sh=$((n_sh + 1))
done
[ $n_sh -eq 3 ] && pass "3 shards of $(((N + 2) / 3)), $(((N + 1) / 3)), $((N / 3)) items (index mod 3)" ||
    fail "shard journals: $(journal "$A/shard-0") $(journal "$A/shard-1") $(journal "$A/shard-2")"
# task 1 lost (its directory removed), resubmitted alone with SHARDS=3
rm -rf "$A/shard-1"
if timeout 300 sbatch --quiet --wait --array=1 --export=ALL,SHARDS=3 --cpus-per-task=1 --time=5 -o "$A/job-%a.out" \
    "$A/job.sh" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"; then pass "sbatch --array=1 (SHARDS=3): exit 0"; else
    fail "sbatch --array=1: $(cat "$TMP/stderr.txt" "$A"/job-1.out 2>/dev/null | head -20)"
fi
[ "$(journal "$A/shard-1")" -eq 3 ] && pass "the resubmitted task 1 computed its 3 items" ||
    fail "resubmitted shard 1: journal $(journal "$A/shard-1")"
ok "steer merge the 3 shards" "$STEER" merge "$A"/shard-* -o "$A/all"
same "$TMP/plain" "$A/all" "job array + merge = plain sweep"
finish
