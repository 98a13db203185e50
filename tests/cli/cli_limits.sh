#!/usr/bin/env bash
# cli_limits.sh STEER REPO — limits are said (issue 22): generation that stops
# at the context limit says so, --ctx beyond the trained context warns, an
# integer past int's range says "out of range", converting to llama2.c names
# the tokenizer file it writes beside the checkpoint, and an unknown option
# suggests the nearest one.
set -u
STEER=${1:?usage: cli_limits.sh STEER REPO}
REPO=${2:?usage: cli_limits.sh STEER REPO}
B=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"

ok "generate -n 100 --ctx 16" "$STEER" generate -m "$B" -p Once -n 100 --ctx 16 --quiet
has "$TMP/stderr.txt" "stopped after [0-9]+ of 100 new tokens: the context holds 16 positions" "context limit said"
ok "generate --ctx 1000 (512 trained)" "$STEER" generate -m "$B" -p Once -n 2 --ctx 1000 --quiet
has "$TMP/stderr.txt" "warning: --ctx 1000 is beyond the 512 positions the model was trained with" "--ctx warning"
ok "generate within limits" "$STEER" generate -m "$B" -p Once -n 2 --quiet
[ ! -s "$TMP/stderr.txt" ] && pass "nothing said within limits" || fail "stderr: $(cat "$TMP/stderr.txt")"
mkdir -p "$TMP/out"
expect_fail "-n 99999999999" "out of range" "$STEER" generate -m "$B" -p Once -n 99999999999
expect_fail "-n abc" "expects an integer" "$STEER" generate -m "$B" -p Once -n abc
expect_fail "--thread" "did you mean --threads?" "$STEER" generate -m "$B" -p Once --thread 2
ok "convert to llama2.c" "$STEER" convert "$REPO/models/stories260K/stories260K.gguf" "$TMP/l.bin"
has "$TMP/stderr.txt" "tokenizer is $TMP/tokenizer.bin" "the tokenizer file is named"
[ -s "$TMP/tokenizer.bin" ] && pass "tokenizer.bin written" || fail "no tokenizer.bin"
finish
