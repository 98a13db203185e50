# lib_cli.sh — helpers sourced by the tests/cli/cli_*.sh scripts (CMake runs only
# cli_*.sh files as tests; this one only defines helpers).
# Provides: TMP (removed on exit), OMP_NUM_THREADS, fails, pass, fail, has,
# ok, expect_fail (output files go to $TMP/out), finish.
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

# ok NAME CMD...: CMD succeeds (stdout in $TMP/stdout.txt).
ok() {
    local name=$1
    shift
    if "$@" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"; then pass "$name"; else
        fail "$name: exit $?: $(cat "$TMP/stderr.txt")"
    fi
}

# expect_fail NAME NEEDLE CMD...: exit 1..127, one line on stderr starting
# with "steer" and containing NEEDLE, nothing left in $TMP/out.
expect_fail() {
    local name=$1 needle=$2
    shift 2
    mkdir -p "$TMP/out"
    rm -rf "$TMP/out"/*
    "$@" >"$TMP/stdout.txt" 2>"$TMP/stderr.txt"
    local rc=$? problems=""
    [ "$rc" -gt 0 ] && [ "$rc" -lt 128 ] || problems+=" exit status $rc;"
    [ "$(wc -l <"$TMP/stderr.txt")" -eq 1 ] || problems+=" $(wc -l <"$TMP/stderr.txt") lines on stderr;"
    grep -Eq '^steer[ :]' "$TMP/stderr.txt" || problems+=" message does not start with 'steer';"
    grep -qF -- "$needle" "$TMP/stderr.txt" || problems+=" message does not name '$needle';"
    [ -z "$(ls -A "$TMP/out")" ] || problems+=" left files: $(ls -A "$TMP/out");"
    if [ -z "$problems" ]; then pass "$name -> exit $rc: $(cat "$TMP/stderr.txt")"; else
        fail "$name:$problems"
        sed 's/^/     | /' "$TMP/stderr.txt" | head -5
    fi
}

# finish: prints the closing count line and exits non-zero on failures.
finish() {
    echo "$fails failure(s)"
    [ "$fails" -eq 0 ]
    exit $?
}
