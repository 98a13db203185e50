#!/usr/bin/env bash
# cli_vocabulary.sh STEER REPO — one option vocabulary (issue 22): walks the
# option table of every command and subcommand (their --help) and fails on
#   - a shared concept spelled or abbreviated another way: --model is -m,
#     --out -o, --tokenizer -z, --quiet -q, --n -n (wherever they exist), and
#     those short names mean nothing else (one exception: `steer bench -o` is
#     llama-bench's -o, the output format);
#   - a retired spelling (--output, --n-new; --site outside `train`, whose
#     steering site is one site): those stay as hidden aliases only;
#   - a long option not in tests/cli/vocabulary.txt (a new spelling is added
#     there on purpose, after checking no existing word means the same);
# and checks that every command's --help has an example.
set -u
STEER=${1:?usage: cli_vocabulary.sh STEER REPO}
REPO=${2:?usage: cli_vocabulary.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
VOCAB=$REPO/tests/cli/vocabulary.txt

cmds=$("$STEER" | awk '/^commands:/ {s = 1; next} s && /^  [a-z]/ {print $1} s && /^$/ {s = 0}')
all=()
for c in $cmds; do
    subs=$("$STEER" "$c" 2>/dev/null | awk '/^subcommands:/ {s = 1; next} s && /^  [a-z]/ {print $1} s && /^$/ {s = 0}')
    if [ -n "$subs" ]; then for s in $subs; do all+=("$c $s"); done; else all+=("$c"); fi
done
[ "${#all[@]}" -ge 25 ] && pass "${#all[@]} commands and subcommands" || fail "only ${#all[@]} commands found"
n_opts=0
for cmd in "${all[@]}"; do
    # shellcheck disable=SC2086
    "$STEER" $cmd --help >"$TMP/help.txt" 2>&1 || { fail "steer $cmd --help: exit $?"; continue; }
    grep -q '^example:' "$TMP/help.txt" || fail "steer $cmd --help has no example"
    # option lines: "  -m, --model MODEL   help" or "  --long X   help"
    grep -E '^  (-[a-zA-Z], )?--[a-z]' "$TMP/help.txt" | sed -E 's/^  //' | while read -r first rest; do
        if [[ $first == -?, ]]; then short=${first%,}; long=${rest%% *}; else short=""; long=$first; fi
        [ "$long" = "--help" ] && continue
        echo "$cmd|$short|$long"
    done >"$TMP/opts.txt"
    while IFS='|' read -r c short long; do
        n_opts=$((n_opts + 1))
        case "$long" in
        --model) want=-m ;; --out) want=-o ;; --tokenizer) want=-z ;; --quiet) want=-q ;; --n) want=-n ;; *) want="" ;;
        esac
        [ -n "$want" ] && [ "$short" != "$want" ] && fail "steer $c: $long must be $want/$long (is '${short:-none}')"
        # and the other way: these short names mean only their concept. The one
        # exception: `steer bench -o` is the output format, as llama-bench's -o
        # (its command lines are meant to carry over; bench writes no file).
        case "$short" in
        -m) want=--model ;; -o) want=--out ;; -z) want=--tokenizer ;; -q) want=--quiet ;; -n) want=--n ;; *) want="" ;;
        esac
        [ "$c|$short|$long" = "bench|-o|--format" ] && want=""
        [ -n "$want" ] && [ "$long" != "$want" ] && fail "steer $c: $short must be $short/$want (is $long)"
        case "$long" in
        --output | --n-new) fail "steer $c: retired spelling $long" ;;
        --site) [ "$c" = train ] || fail "steer $c: --site (use --sites)" ;;
        esac
        grep -qxF -- "$long" "$VOCAB" || fail "steer $c: $long is not in tests/cli/vocabulary.txt"
    done <"$TMP/opts.txt"
    cat "$TMP/opts.txt" >>"$TMP/all_opts.txt"
done
n=$(wc -l <"$TMP/all_opts.txt")
[ "$n" -gt 200 ] && pass "$n options checked against the vocabulary" || fail "only $n options read"
# The retired spellings still parse (aliases), so old command lines work.
B=$REPO/models/stories260K/stories260K.bin
ok "generate --n-new (alias)" "$STEER" generate -m "$B" -p Once --n-new 2 --quiet
ok "make-model --output (alias)" "$STEER" make-model --arch llama --output "$TMP/mm"
finish
