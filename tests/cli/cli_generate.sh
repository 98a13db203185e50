#!/usr/bin/env bash
# cli_generate.sh STEER REPO — `steer generate` prints exactly what llama2.c's
# run.c prints for stories260K (greedy), from the .bin and the .gguf, and
# seeded sampling is reproducible.
set -u
STEER=${1:?usage: cli_generate.sh STEER REPO}
REPO=${2:?usage: cli_generate.sh STEER REPO}
MODELS=$REPO/models/stories260K
CASES=$REPO/tests/data/stories260K
source "$(dirname "$0")/lib_cli.sh"

# expect_text NAME EXPECTED_FILE ACTUAL_FILE: byte-for-byte comparison.
expect_text() {
    if cmp -s "$2" "$3"; then
        pass "$1 ($(wc -c <"$3") bytes identical to $(basename "$2"))"
    else
        fail "$1: output differs from $(basename "$2")"
        cmp "$2" "$3"
        diff "$2" "$3" | head -20
    fi
}

# 1. Empty prompt, 200 greedy tokens = llama2.c doc/stories260K.md sample.
#    run.c's -n 200 starting from BOS yields 200 new tokens, so ours is -n 200.
#    The expected file has no trailing newline; our output ends with one.
{ cat "$MODELS/expected_greedy_t0_n200.txt"; echo; } >"$TMP/expected_n200.txt"
for model in stories260K.bin stories260K.gguf; do
    if "$STEER" generate -m "$MODELS/$model" -p "" -n 200 --temp 0 >"$TMP/out.txt" 2>"$TMP/err.txt"; then
        expect_text "$model empty prompt -n 200 --temp 0" "$TMP/expected_n200.txt" "$TMP/out.txt"
    else
        fail "$model empty prompt: exit status $?: $(cat "$TMP/err.txt")"
    fi
done

# 2. The golden prompts, 64 greedy tokens each, from both model files.
n_cases=0
for json in "$CASES"/*.json; do
    name=$(basename "$json" .json)
    prompt=$(grep -m1 '"prompt":' "$json" | sed 's/^ *"prompt": *"\(.*\)", *$/\1/')
    [ -n "$prompt" ] || { fail "$name: no prompt in $json"; continue; }
    n_cases=$((n_cases + 1))
    for model in stories260K.bin stories260K.gguf; do
        if "$STEER" generate -m "$MODELS/$model" -p "$prompt" -n 64 --temp 0 >"$TMP/out.txt" 2>"$TMP/err.txt"; then
            expect_text "$model \"$prompt\" -n 64" "$CASES/$name.greedy64.txt" "$TMP/out.txt"
        else
            fail "$model \"$prompt\": exit status $?: $(cat "$TMP/err.txt")"
        fi
    done
done
[ "$n_cases" -ge 3 ] && pass "$n_cases golden prompt cases found" || fail "expected 3 golden cases, found $n_cases"

# 3. --ids gives the same text as the prompt it encodes ("The cat" = 1 291 280 294).
if "$STEER" generate -m "$MODELS/stories260K.bin" --ids "1 291 280 294" -n 64 >"$TMP/ids.txt" 2>"$TMP/err.txt"; then
    expect_text "--ids \"1 291 280 294\" -n 64" "$CASES/the_cat.greedy64.txt" "$TMP/ids.txt"
else
    fail "--ids: $(cat "$TMP/err.txt")"
fi

# 4. Seeded sampling: reproducible, and not the greedy text.
run_sampled() {
    "$STEER" generate -m "$MODELS/stories260K.bin" -p "Once upon a time" -n 64 --temp 1 --top-p 0.9 --seed "$1" \
        >"$2" 2>"$TMP/err.txt"
}
if run_sampled 42 "$TMP/s1.txt" && run_sampled 42 "$TMP/s2.txt" && run_sampled 7 "$TMP/s3.txt"; then
    expect_text "--temp 1 --top-p 0.9 --seed 42 twice" "$TMP/s1.txt" "$TMP/s2.txt"
    if cmp -s "$TMP/s1.txt" "$CASES/once_upon_a_time.greedy64.txt"; then
        fail "seeded sampling printed the greedy text"
    else
        pass "seeded sampling differs from greedy"
    fi
    if cmp -s "$TMP/s1.txt" "$TMP/s3.txt"; then
        fail "--seed 42 and --seed 7 printed the same text"
    else
        pass "--seed 42 and --seed 7 differ"
    fi
    echo "     sample (seed 42): $(head -c 120 "$TMP/s1.txt" | tr '\n' ' ')"
else
    fail "sampling run failed: $(cat "$TMP/err.txt")"
fi

# 5. Nothing on stderr when it is not a terminal; -n 0 prints the prompt only.
"$STEER" generate -m "$MODELS/stories260K.bin" -p "The cat" -n 0 >"$TMP/n0.txt" 2>"$TMP/err.txt"
printf 'The cat\n' >"$TMP/n0_expected.txt"
expect_text "-n 0 prints the prompt and a newline" "$TMP/n0_expected.txt" "$TMP/n0.txt"
if [ -s "$TMP/err.txt" ]; then fail "stderr not empty: $(cat "$TMP/err.txt")"; else pass "stderr empty (not a TTY)"; fi

# 6. Steering with a zero vector changes nothing; a large one changes the text.
#    (capture gives a [1, 64] resid_post.2 tensor; alpha 0 makes it a no-op.)
if "$STEER" capture -m "$MODELS/stories260K.bin" --ids "1 291" --sites resid_post --layers 2 \
    -o "$TMP/vec.safetensors" 2>"$TMP/err.txt"; then
    "$STEER" generate -m "$MODELS/stories260K.bin" -p "The cat" -n 64 \
        --steer "$TMP/vec.safetensors:resid_post:2:0" >"$TMP/st0.txt" 2>"$TMP/err.txt"
    expect_text "--steer alpha 0 = unsteered" "$CASES/the_cat.greedy64.txt" "$TMP/st0.txt"
    "$STEER" generate -m "$MODELS/stories260K.bin" -p "The cat" -n 64 \
        --steer "$TMP/vec.safetensors:resid_post:2:8" >"$TMP/st8.txt" 2>"$TMP/err.txt"
    if [ $? -eq 0 ] && ! cmp -s "$TMP/st8.txt" "$CASES/the_cat.greedy64.txt"; then
        pass "--steer alpha 8 changes the text: $(head -c 80 "$TMP/st8.txt" | tr '\n' ' ')"
    else
        fail "--steer alpha 8: $(cat "$TMP/err.txt")"
    fi
else
    fail "capture for steering vector: $(cat "$TMP/err.txt")"
fi

echo "cli_generate: $fails failure(s)"
[ "$fails" -eq 0 ]
