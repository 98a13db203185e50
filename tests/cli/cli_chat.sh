#!/usr/bin/env bash
# cli_chat.sh STEER REPO — --chat wraps the prompt as a user turn in the
# model's chat format: on a random llama model whose tokenizer_config.json
# carries a Llama 2 [INST] template, `logits --chat -p Hi` reads the same
# tokens as the hand-formatted "[INST] Hi [/INST]" with BOS, and a model
# without a template fails with one line.
set -u
STEER=${1:?usage: cli_chat.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"

M=$TMP/m
"$STEER" make-model --arch llama --seed 3 -o "$M" >/dev/null 2>"$TMP/err" || { fail "make-model: $(cat "$TMP/err")"; finish; }
# a model without a chat template: --chat is refused
if "$STEER" logits -m "$M" --chat -p "Hi" -o "$TMP/x.safetensors" 2>"$TMP/err"; then
    fail "--chat without a template succeeded"
else
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -e "$TMP/x.safetensors" ] && pass "no template: one-line error: $(cat "$TMP/err")" \
        || fail "no template: $(cat "$TMP/err")"
fi
# add a Llama 2 style template (the part of the real one that matters here)
tpl="{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"
sed -i "s|^{|{\"chat_template\": \"$tpl\",|" "$M/tokenizer_config.json"
"$STEER" logits -m "$M" --chat -p "Hi" -o "$TMP/chat.safetensors" 2>"$TMP/err" || fail "--chat: $(cat "$TMP/err")"
"$STEER" logits -m "$M" -p "[INST] Hi [/INST]" -o "$TMP/hand.safetensors" 2>"$TMP/err" || fail "hand: $(cat "$TMP/err")"
if cmp -s "$TMP/chat.safetensors" "$TMP/hand.safetensors"; then
    pass "--chat -p Hi == '[INST] Hi [/INST]' with BOS ($(wc -c <"$TMP/chat.safetensors") bytes identical)"
else
    # metadata (prompt, command) differs by design; compare the listing of tensors instead
    "$STEER" tensors "$TMP/chat.safetensors" | grep -E "^ *(logits|tokens)" >"$TMP/a"
    "$STEER" tensors "$TMP/hand.safetensors" | grep -E "^ *(logits|tokens)" >"$TMP/b"
    tail -c 4096 "$TMP/chat.safetensors" >"$TMP/ta"; tail -c 4096 "$TMP/hand.safetensors" >"$TMP/tb"
    if cmp -s "$TMP/a" "$TMP/b" && cmp -s "$TMP/ta" "$TMP/tb"; then
        pass "--chat -p Hi == '[INST] Hi [/INST]' with BOS (same tensors, same trailing data)"
    else
        fail "--chat tokens differ from the hand-formatted prompt"; cat "$TMP/a" "$TMP/b"
    fi
fi
finish
