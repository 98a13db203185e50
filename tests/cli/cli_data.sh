#!/usr/bin/env bash
# cli_data.sh STEER REPO — `steer data`: ListOps generation (N lines, same seed
# → identical file, every answer re-evaluates), `data show` on Winogrande dev
# (the SPEC §6 template exactly), few-shot contexts, stats, export round trip,
# --help with an example, and bad inputs (exit 1/2, one line on stderr naming
# file and line, nothing left behind).
set -u
STEER=${1:?usage: cli_data.sh STEER REPO}
REPO=${2:?usage: cli_data.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out"



# ---------------------------------------------------------------- listops
LO=$TMP/lo.jsonl
ok "data listops" "$STEER" data listops --n 300 --seed 7 --max-depth 4 --max-args 5 -o "$LO"
has "$TMP/stdout.txt" "^wrote .*lo.jsonl \(300 expressions" "listops prints what it wrote"
[ "$(wc -l <"$LO")" -eq 300 ] && pass "300 lines" || fail "listops lines: $(wc -l <"$LO")"
grep -Evq '^\{"expr": "\[(MAX|MIN|MED|SM) [][A-Z0-9 ]* \]", "answer": [0-9]\}$' "$LO" &&
    fail "listops line format: $(grep -Ev '^\{"expr": "\[' "$LO" | head -2)" || pass "every line is {\"expr\": \"[OP ... ]\", \"answer\": d}"
ok "same seed again" "$STEER" data listops --n 300 --seed 7 --max-depth 4 --max-args 5 -o "$TMP/lo2.jsonl"
cmp -s "$LO" "$TMP/lo2.jsonl" && pass "same seed -> identical file" || fail "same seed gave different files"
ok "another seed" "$STEER" data listops --n 300 --seed 8 --max-depth 4 --max-args 5 -o "$TMP/lo3.jsonl"
cmp -s "$LO" "$TMP/lo3.jsonl" && fail "seeds 7 and 8 gave the same file" || pass "another seed -> another file"
ok "fewer lines" "$STEER" data listops --n 10 --seed 7 --max-depth 4 --max-args 5 -o "$TMP/lo10.jsonl"
[ "$(head -10 "$LO")" = "$(cat "$TMP/lo10.jsonl")" ] && pass "--n 10 = first 10 lines of --n 300" ||
    fail "--n 10 is not a prefix"
ls "$TMP" | grep -q '\.tmp\.' && fail "temporary files left: $(ls "$TMP")" || pass "no temporary files left"

# stats: the evaluator agrees with every answer; depths within 1..4.
ok "data stats listops" "$STEER" data stats "listops:$LO"
has "$TMP/stdout.txt" '^items: 300$' "stats: 300 items"
has "$TMP/stdout.txt" '^evaluator agrees: 300 of 300$' "stats: every answer re-evaluates"
has "$TMP/stdout.txt" '^depth: 1: [0-9]+, 2: [0-9]+, 3: [0-9]+, 4: [0-9]+$' "stats: depths 1..4"
has "$TMP/stdout.txt" '^max args: [2-5]$' "stats: at most 5 arguments"

# show listops: the SPEC template.
ok "data show listops" "$STEER" data show "listops:$LO" --n 1
first_expr=$(head -1 "$LO" | sed 's/^{"expr": "\(.*\)", "answer": \([0-9]\)}$/\1/')
first_ans=$(head -1 "$LO" | sed 's/^.*"answer": \([0-9]\)}$/\1/')
printf '=== item 1 (id 1, line 1, gold %s)\n--- prompt\nSolve: %s\nAnswer:\n--- completion\n %s\n' \
    "$first_ans" "$first_expr" "$first_ans" >"$TMP/want.txt"
cmp -s "$TMP/stdout.txt" "$TMP/want.txt" && pass "show listops: 'Solve: {expr}\\nAnswer:' / ' {digit}'" || {
    fail "show listops output:"
    diff "$TMP/want.txt" "$TMP/stdout.txt" | sed 's/^/     | /'
}

# ---------------------------------------------------------------- winogrande
ok "data show winogrande" "$STEER" data show "winogrande:$DEV" --n 1
cat >"$TMP/want.txt" <<'EOF'
=== item 1 (id 3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-2, line 1, gold B)
--- prompt
Sarah was a much better surgeon than Maria so _ always got the easier cases.
Question: Which option fills the blank?
(A) Sarah
(B) Maria
Answer: The correct answer is
--- completion
 (B) Maria.
EOF
cmp -s "$TMP/stdout.txt" "$TMP/want.txt" && pass "show winogrande row 1 = SPEC §6 template" || {
    fail "show winogrande output:"
    diff "$TMP/want.txt" "$TMP/stdout.txt" | sed 's/^/     | /'
}

ok "show --template with escapes" "$STEER" data show "winogrande:$DEV" --n 1 --start 1 \
    --template '{sentence}\nA={option1} B={option2}\nAnswer:' --completion-template ' {letter}'
has "$TMP/stdout.txt" '^=== item 2 \(id 3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-1, line 2, gold A\)$' "--start 1 shows item 2"
has "$TMP/stdout.txt" '^A=Sarah B=Maria$' "template: \\n is a newline"
has "$TMP/stdout.txt" '^ A$' "completion template"

ok "show --fewshot" "$STEER" data show "winogrande:$DEV" --n 2 --fewshot 3 --seed 5
has "$TMP/stdout.txt" '^--- context \(3 demonstrations: items [0-9]+, [0-9]+, [0-9]+\)$' "few-shot context header"
[ "$(grep -Ec '^Answer: The correct answer is \((A|B)\) .*\.$' "$TMP/stdout.txt")" -eq 6 ] &&
    pass "6 demonstrations, each with its answer" || fail "few-shot demonstrations: $(cat "$TMP/stdout.txt")"
awk '/^=== item/ { n = $3 }
     /^--- context/ { s = $0; sub(/.*items /, "", s); sub(/\)$/, "", s); k = split(s, a, ", ");
                      for (i = 1; i <= k; i++) if (a[i] == n) bad = 1 }
     END { exit bad }' "$TMP/stdout.txt" &&
    pass "no query is among its own demonstrations" || fail "a query is among its demonstrations"
"$STEER" data show "winogrande:$DEV" --n 2 --fewshot 3 --seed 5 >"$TMP/again.txt"
cmp -s "$TMP/stdout.txt" "$TMP/again.txt" && pass "few-shot is deterministic" || fail "few-shot differs between runs"

ok "data stats winogrande" "$STEER" data stats "winogrande:$DEV"
has "$TMP/stdout.txt" '^items: 1267$' "stats: 1267 items"
has "$TMP/stdout.txt" '^gold: A: 628 \(49\.6%\), B: 639 \(50\.4%\)$' "stats: gold letters"

# export → jsonl → show gives the same rendering.
ok "data export" "$STEER" data export "winogrande:$DEV" --n 5 -o "$TMP/wg5.jsonl"
[ "$(wc -l <"$TMP/wg5.jsonl")" -eq 5 ] && pass "export: 5 lines" || fail "export lines: $(wc -l <"$TMP/wg5.jsonl")"
"$STEER" data show "winogrande:$DEV" --n 5 | grep -v '^===' >"$TMP/a.txt"
"$STEER" data show "$TMP/wg5.jsonl" --n 5 | grep -v '^===' >"$TMP/b.txt"
cmp -s "$TMP/a.txt" "$TMP/b.txt" && pass "export round trip renders the same" || fail "export round trip differs"

# ---------------------------------------------------------------- help
ok "data --help" "$STEER" data --help
has "$TMP/stdout.txt" '^example:' "data --help has an example"
for sub in listops show stats export; do
    ok "data $sub --help" "$STEER" data $sub --help
    has "$TMP/stdout.txt" "^  steer data $sub " "data $sub --help has an example"
done
"$STEER" >"$TMP/overview.txt"
has "$TMP/overview.txt" '^  data ' "steer lists the data command"

# ---------------------------------------------------------------- bad input
printf '%s\n' '{"qID": "a", "sentence": "x _ y", "option1": "P", "option2": "Q", "answer": "1"}' '' \
    '{"qID": "b", "sentence": "x _ y", "option1": "P", "answer": "2"}' >"$TMP/missing.jsonl"
expect_fail "missing field" "missing.jsonl:3: missing field 'option2'" "$STEER" data show "winogrande:$TMP/missing.jsonl"
printf '%s\n' '{"sentence": "no blank", "option1": "P", "option2": "Q", "answer": "1"}' >"$TMP/noblank.jsonl"
expect_fail "no blank" "noblank.jsonl:1: sentence has 0 blanks" "$STEER" data stats "winogrande:$TMP/noblank.jsonl"
printf '%s\n' '{"sentence": "a _", "option1": "P", "option2": "Q", "answer": "3"}' >"$TMP/ans.jsonl"
expect_fail "answer 3" 'ans.jsonl:1: answer must be "1" or "2"' "$STEER" data export "winogrande:$TMP/ans.jsonl" \
    -o "$TMP/out/x.jsonl"
printf '%s\n' '{"expr": "[MAX 1 2 ]", "answer": 2}' '{"expr": "[SM 5 7 ]", "answer": 12}' >"$TMP/lobad.jsonl"
expect_fail "listops answer 12" "lobad.jsonl:2: answer must be a digit" "$STEER" data export "listops:$TMP/lobad.jsonl" \
    -o "$TMP/out/x.jsonl"
printf '%s\n' '{"prompt": "a"}' '{"prompt": "b", ' >"$TMP/broken.jsonl"
expect_fail "malformed JSON" "broken.jsonl:2: malformed JSON" "$STEER" data show "$TMP/broken.jsonl"
expect_fail "winogrande file as jsonl" "use winogrande:" "$STEER" data show "$DEV"
expect_fail "missing file" "nope.jsonl" "$STEER" data show "winogrande:$TMP/nope.jsonl"
expect_fail "unknown placeholder" "{opt1}" "$STEER" data show "winogrande:$DEV" --template '{sentence} {opt1}'
expect_fail "listops without -o" "missing -o" "$STEER" data listops --n 5
expect_fail "listops --max-args 1" "--max-args" "$STEER" data listops --max-args 1 -o "$TMP/out/lo.jsonl"
expect_fail "listops --n 0" "--n" "$STEER" data listops --n 0 -o "$TMP/out/lo.jsonl"
expect_fail "listops into a missing directory" "$TMP/out/none/lo.jsonl" \
    "$STEER" data listops --n 5 -o "$TMP/out/none/lo.jsonl"
expect_fail "too many demonstrations" "only 4" "$STEER" data show "$TMP/wg5.jsonl" --fewshot 5
expect_fail "unknown subcommand" "unknown subcommand 'frob'" "$STEER" data frob
expect_fail "unknown option" "unknown option '--bogus'" "$STEER" data show "winogrande:$DEV" --bogus

finish
