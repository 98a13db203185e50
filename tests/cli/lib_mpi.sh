# lib_mpi.sh — the set-up the --mpi CLI tests share (cli_mpi.sh,
# cli_mpi_commands.sh, cli_srun.sh); sourced after lib_cli.sh with STEER and
# REPO set.
# Exits 0 with the reason when steer was built without MPI.
if "$STEER" sweep --help | grep -q "not in this build"; then
    echo "skip: this steer was built without MPI (STEER_MPI=OFF, or CMake found no MPI; scripts/setup.sh installs Open MPI)"
    exit 0
fi
command -v mpirun >/dev/null || { fail "steer has --mpi but there is no mpirun (Debian: openmpi-bin)"; finish; }
# One thread per rank; only Open MPI's shared-memory transport (localhost),
# without the cross-process copy (CMA) that containers often forbid. Open MPI
# leaks at exit by design, so LeakSanitizer (ASan build) is off for these runs.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS)

# The sweep that cli_mpi.sh and cli_srun.sh share out (stories260K and its
# winogrande fine-tune, 8 items), and its checks.
DEV=$REPO/tests/data/winogrande/dev.jsonl
B=$REPO/models/stories260K/stories260K.bin
F=$REPO/models/stories260K-winogrande/stories260K-winogrande.bin
N=8
SW=("$STEER" sweep --base "$B" --ft "$F" --data "winogrande:$DEV" --n $N --sites attn_out,resid_post --layers 0,4
    --alphas 0,0.5,1 --tokens 2 --quiet)
# same: DIR1 DIR2 NAME — items.csv and dkl.csv byte-equal, summary.json
# equal but for command and wall_s
same() {
    if cmp -s "$1/dkl.csv" "$2/dkl.csv" && cmp -s "$1/items.csv" "$2/items.csv"; then pass "$3: dkl.csv, items.csv"; else
        fail "$3: outputs differ"
        diff "$1/dkl.csv" "$2/dkl.csv" 2>&1 | head -5
    fi
    if cmp -s <(grep -Ev '"(command|wall_s)"' "$1/summary.json") <(grep -Ev '"(command|wall_s)"' "$2/summary.json"); then
        pass "$3: summary.json"
    else
        fail "$3: summary.json differs"
        diff "$1/summary.json" "$2/summary.json" 2>&1 | head -8
    fi
}
# journal DIR: the items in DIR's progress journal (0 when there is none)
journal() { local n; n=$(grep -c '"item"' "$1/progress.jsonl" 2>/dev/null); echo "${n:-0}"; }
