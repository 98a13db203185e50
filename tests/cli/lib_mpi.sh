# lib_mpi.sh — the set-up the --mpi CLI tests share (cli_mpi.sh,
# cli_mpi_commands.sh); sourced after lib_cli.sh with STEER set.
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
