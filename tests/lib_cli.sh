# lib_cli.sh — helpers sourced by the tests/cli_*.sh scripts (CMake runs only
# cli_*.sh files as tests; this one only defines helpers).
# Provides: TMP (removed on exit), OMP_NUM_THREADS, fails, pass, fail, has,
# finish.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

# has FILE REGEX DESCRIPTION: FILE has a line matching the extended REGEX.
has() {
    if grep -Eq -- "$2" "$1"; then pass "$3"; else
        fail "$3: no line matching /$2/ in:"
        sed 's/^/     | /' "$1"
    fi
}

# finish: prints the closing count line and exits non-zero on failures.
finish() {
    echo "$fails failure(s)"
    [ "$fails" -eq 0 ]
    exit $?
}
