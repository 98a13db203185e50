#!/usr/bin/env bash
# cli_info_archs.sh STEER REPO — `steer info` on every fixture, from its
# Hugging Face directory and its GGUF: architecture, layers, d_model, heads,
# parameter count (as the fixture READMEs state) and the site list.
set -u
STEER=${1:?usage: cli_info_archs.sh STEER REPO}
REPO=${2:?usage: cli_info_archs.sh STEER REPO}
D=$REPO/tests/data
source "$(dirname "$0")/lib_cli.sh"
check() { # check NAME OUTPUT PATTERN
    if grep -Eq "$3" <<<"$2"; then pass "$1: /$3/"; else fail "$1: no line matching /$3/"; fi
}
# fixture arch layers d_model heads kv params
while read -r fx arch layers d heads kv params; do
    for src in "$D/$fx/hf" "$D/$fx"/*.gguf; do
        out=$("$STEER" info "$src" 2>&1) || { echo "FAIL $src: $out"; fails=$((fails + 1)); continue; }
        name="$fx $(basename "$src")"
        check "$name" "$out" "^architecture: +$arch\$"
        check "$name" "$out" "^layers: +$layers\$"
        check "$name" "$out" "^d_model: +$d\$"
        check "$name" "$out" "^heads: +$heads\$"
        check "$name" "$out" "^kv_heads: +$kv\$"
        check "$name" "$out" "^parameters: +$params "
        for site in resid_pre attn_out resid_mid mlp_in mlp_gate mlp_up mlp_act mlp_out resid_post; do
            check "$name" "$out" "^  $site +[0-9]+\$"
        done
    done
done <<'EOF2'
llama llama 4 128 4 2 722048
gemma gemma 2 64 4 2 180544
gemma2 gemma2 26 64 4 2 997952
qwen2 qwen2 2 128 4 2 361600
EOF2
finish
