#!/usr/bin/env bash
# cli_bench.sh STEER REPO — `steer bench`: llama-bench's flags and output
# fields (JSON: names, types, one object per test, samples of length -r,
# n_prompt/n_gen matching the test name; CSV and markdown headers), comma
# lists, and one-line errors for bad input. Never looks at timing values
# beyond "positive and finite".
set -u
STEER=${1:?usage: cli_bench.sh STEER REPO}
REPO=${2:?usage: cli_bench.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
M=$REPO/tests/data/llama-2-tiny-random.gguf
B=$REPO/models/stories260K/stories260K.bin

ok "bench -o json" "$STEER" bench -m "$M" -p 8 -n 4 -r 2 -t 2 -o json
cp "$TMP/stdout.txt" "$TMP/b.json"
[ -s "$TMP/stderr.txt" ] && fail "stderr not empty when it is not a terminal: $(head -3 "$TMP/stderr.txt")"
# check_json FILE R "TEST:N_PROMPT:N_GEN:THREADS:MODEL ..." — the objects in order
check_json() {
    python3 - "$@" <<'EOF'
import json, math, sys
path, reps, want = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
try:
    rows = json.load(open(path))
except Exception as e:
    print("FAIL not JSON: %s" % e); sys.exit(1)
bad = []
if not isinstance(rows, list) or len(rows) != len(want):
    print("FAIL expected a list of %d objects, got %r" % (len(want), type(rows).__name__)); sys.exit(1)
types = {"build_commit": str, "cpu_info": str, "backends": str, "model_filename": str, "model_type": str,
         "model_size": int, "model_n_params": int, "n_batch": int, "n_ubatch": int, "n_threads": int,
         "type_k": str, "type_v": str, "n_gpu_layers": int, "use_mmap": bool, "embeddings": bool,
         "n_prompt": int, "n_gen": int, "test_time": str, "avg_ns": int, "stddev_ns": int,
         "avg_ts": (int, float), "stddev_ts": (int, float), "samples_ns": list, "samples_ts": list,
         "test": str, "cpu_path": str}
for row, w in zip(rows, want):
    test, n_p, n_g, thr, model = w.split(":")
    for k, t in types.items():
        if k not in row: bad.append("%s: no field %s" % (test, k)); continue
        if not isinstance(row[k], t) or (t is int and isinstance(row[k], bool)):
            bad.append("%s: %s is %r" % (test, k, row[k]))
    if bad: continue
    if row["test"] != test: bad.append("test %r, want %r" % (row["test"], test))
    if (row["n_prompt"], row["n_gen"]) != (int(n_p), int(n_g)):
        bad.append("%s: n_prompt/n_gen %d/%d" % (test, row["n_prompt"], row["n_gen"]))
    name = "pp%d" % row["n_prompt"] if row["n_prompt"] else "tg%d" % row["n_gen"]
    if name != row["test"] or (row["n_prompt"] > 0) == (row["n_gen"] > 0):
        bad.append("%s: test does not match n_prompt %d, n_gen %d" % (test, row["n_prompt"], row["n_gen"]))
    if row["n_threads"] != int(thr): bad.append("%s: n_threads %d" % (test, row["n_threads"]))
    if not row["model_filename"].endswith(model): bad.append("%s: model_filename %s" % (test, row["model_filename"]))
    if row["model_size"] <= 0 or row["model_n_params"] <= 0: bad.append("%s: size/params not positive" % test)
    for k in ("samples_ns", "samples_ts"):
        if len(row[k]) != reps: bad.append("%s: %s has %d values, want %d" % (test, k, len(row[k]), reps))
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in row[k]):
            bad.append("%s: %s not all positive and finite: %r" % (test, k, row[k]))
    if not all(isinstance(v, int) for v in row["samples_ns"]): bad.append("%s: samples_ns not integers" % test)
    for k in ("avg_ns", "avg_ts"):
        if not (math.isfinite(row[k]) and row[k] > 0): bad.append("%s: %s = %r" % (test, k, row[k]))
    for k in ("stddev_ns", "stddev_ts"):
        if not (math.isfinite(row[k]) and row[k] >= 0): bad.append("%s: %s = %r" % (test, k, row[k]))
    if reps == 1 and (row["stddev_ns"] != 0 or row["stddev_ts"] != 0): bad.append("%s: stddev of one run" % test)
for b in bad: print("FAIL " + b)
sys.exit(1 if bad else 0)
EOF
}
if check_json "$TMP/b.json" 2 "pp8:8:0:2:llama-2-tiny-random.gguf tg4:0:4:2:llama-2-tiny-random.gguf" >"$TMP/check.txt"; then
    pass "json: 2 objects (pp8, tg4), llama-bench's fields and types, 2 samples each"
else
    fail "json: $(cat "$TMP/check.txt")"
fi

# build_commit: the commit the binary was built from (git describe at build
# time, cmake/build_commit.cmake), not the one CMake was configured at. Only
# in a git checkout; "-dirty" is left out of the comparison (a tree edited
# after the build).
if want_commit=$(git -C "$REPO" describe --always --abbrev=8 2>/dev/null); then
    got_commit=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["build_commit"])' "$TMP/b.json")
    if [ "${got_commit%-dirty}" = "$want_commit" ]; then
        pass "json: build_commit $got_commit is the checkout's commit"
    else
        fail "json: build_commit $got_commit, the checkout is at $want_commit (built before the last commit?)"
    fi
else
    echo "SKIP build_commit check: $REPO is not a git checkout"
fi

# comma lists, two models, -r 1: models, then threads, then pp tests, then tg tests
ok "bench lists -o json" "$STEER" bench -m "$M" -m "$B" -p 4,8 -n 0,2 -r 1 -t 1,2 -o json -q
want=""
for model in llama-2-tiny-random.gguf stories260K.bin; do
    for t in 1 2; do want+="pp4:4:0:$t:$model pp8:8:0:$t:$model tg2:0:2:$t:$model "; done
done
if check_json "$TMP/stdout.txt" 1 "$want" >"$TMP/check.txt"; then
    pass "json lists: 12 objects in llama-bench's order, -n 0 skipped, stddev 0 for one run"
else
    fail "json lists: $(cat "$TMP/check.txt")"
fi

ok "bench -o csv" "$STEER" bench -m "$M" -p 8 -n 4 -r 2 -t 2 -o csv
cp "$TMP/stdout.txt" "$TMP/b.csv"
has "$TMP/b.csv" '^build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,' \
    "csv: llama-bench's leading columns"
has "$TMP/b.csv" ',n_threads,.*,n_prompt,n_gen,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,test,cpu_path$' \
    "csv: n_prompt ... stddev_ts, test, cpu_path"
[ "$(wc -l <"$TMP/b.csv")" -eq 3 ] && pass "csv: header + 2 rows" || fail "csv: $(wc -l <"$TMP/b.csv") lines"
if python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["test"] for r in rows] == ["pp8", "tg4"], rows
assert all(float(r["avg_ts"]) > 0 and r["n_threads"] == "2" for r in rows)
' "$TMP/b.csv" 2>"$TMP/err.txt"; then pass "csv: parses, tests pp8 and tg4"; else fail "csv: $(tail -1 "$TMP/err.txt")"; fi

ok "bench (markdown)" "$STEER" bench -m "$M" -p 8 -n 4 -r 2 -t 2
cp "$TMP/stdout.txt" "$TMP/b.md"
has "$TMP/b.md" '^\| model +\| +size \| +params \| backend +\| threads \| +test \| +t/s \|$' "md: llama-bench's header"
has "$TMP/b.md" '^\| llama .* \| +CPU[^|]* \| +2 \| +pp8 \| +[0-9.]+ ± [0-9.]+ \|$' "md: pp8 row, t/s avg ± stddev"
has "$TMP/b.md" '^\| llama .* \| +2 \| +tg4 \| +[0-9.]+ ± [0-9.]+ \|$' "md: tg4 row"
has "$TMP/b.md" '^build: ' "md: build line"

"$STEER" bench --help >"$TMP/help.txt" 2>&1
has "$TMP/help.txt" '^  steer bench -m ' "--help has an example"

expect_fail "missing model file" "nope.gguf" "$STEER" bench -m "$TMP/nope.gguf" -p 8 -n 4 -r 1
expect_fail "-p -1" "--n-prompt" "$STEER" bench -m "$M" -p -1 -n 4
expect_fail "-p 0 -n 0 (nothing to run)" "nothing to run" "$STEER" bench -m "$M" -p 0 -n 0
expect_fail "-p 8,x" "--n-prompt" "$STEER" bench -m "$M" -p 8,x
expect_fail "-n -2" "--n" "$STEER" bench -m "$M" -p 8 -n -2
expect_fail "-r 0" "--repetitions" "$STEER" bench -m "$M" -r 0
expect_fail "-t 0" "--threads" "$STEER" bench -m "$M" -t 0
expect_fail "-o xml" "md, json or csv" "$STEER" bench -m "$M" -o xml
expect_fail "no -m" "-m MODEL" "$STEER" bench -p 8
finish
