#!/usr/bin/env bash
# cli_report.sh STEER REPO — `steer report` on a sweep fixture (summary.json
# and items.csv with 2 sites × 3 layers × 3 α × 2 tokens of known values,
# mean ΔKL = α·c, made complete by `steer merge`): the figures are drawn, report.html embeds them as data URIs
# and holds the site names and the table's numbers, report.md links the PNGs;
# -o and several DIRs; bad input (missing DIR, dkl.csv alone, malformed
# items.csv line, empty DIR, bad -o) as one-line errors with nothing written.
set -u
STEER=${1:?usage: cli_report.sh STEER REPO}
REPO=${2:?usage: cli_report.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"

# make_sweep DIR: the fixture (c[site][layer][token] as in tests/unit/test_report.c):
# a sweep's summary.json and items.csv (12 items, ΔKL = α·(c ± x) alternating,
# x = 0.1·√11, so the mean is α·c and the standard error 0.1·α; KL(B ‖ F) 0.5
# and 0.75), turned into a complete sweep directory by `steer merge` (which
# writes dkl.csv and the figures); the figures are removed again so that
# `steer report` draws them.
make_sweep() {
    local src=$1.part
    mkdir -p "$src"
    awk 'BEGIN {
        split("-1.0 -0.5 -1.5 -3.0 0.5 1.0 -0.2 -0.1 0.3 0.4 2.0 -1.0", c, " ");
        split("mlp_in resid_post", site, " "); split("0 0.5 1", al, " "); kb[1] = 0.5; kb[2] = 0.75;
        x = 0.1 * sqrt(11);
        print "item,id,site,layer,alpha,token,kl_steered,kl_base,dkl";
        for (i = 0; i < 12; i++) for (s = 1; s <= 2; s++) for (l = 0; l < 3; l++) for (a = 1; a <= 3; a++)
            for (k = 1; k <= 2; k++) {
                d = al[a] * (c[(s - 1) * 6 + l * 2 + k] + (i % 2 ? -x : x));
                printf "%d,item%d,%s,%d,%s,%d,%.17g,%.17g,%.17g\n", i, i, site[s], l, al[a], k, kb[k] + d, kb[k], d;
            }
    }' >"$src/items.csv"
    cat >"$src/summary.json" <<'EOF'
{"format": "steer-sweep/1", "base": "base260", "ft": "ft260", "base_path": "models/base260.bin",
 "ft_path": "models/ft260.bin", "arch": "llama", "n_layers": 3, "d_model": 64,
 "data": "winogrande:dev.jsonl", "n_items": 12, "n_data": 12, "tokens": 2, "sites": ["mlp_in", "resid_post"],
 "layers": [0, 1, 2], "alphas": [0, 0.5, 1], "continuation": "ft", "positions": "all", "delta_site": null,
 "shard": null, "command": "steer sweep --fixture", "kl_base_mean": [0.5, 0.75], "best": {}, "wall_s": 1.5}
EOF
    "$STEER" merge "$src" -o "$1" --quiet || fail "steer merge of the fixture"
    rm -f "$1"/dkl_*.png "$1"/dkl_*.svg "$1"/heatmap_*.png "$1"/heatmap_*.svg
}

S=$TMP/sweep
make_sweep "$S"
ok "report --help" "$STEER" report --help
has "$TMP/stdout.txt" "^example:" "help has an example"
ok "report DIR" "$STEER" report "$S"
has "$TMP/stdout.txt" "^wrote .*report.html and .*report.md" "prints what it wrote"
for f in report.html report.md dkl_mlp_in.png dkl_mlp_in.svg heatmap_mlp_in.png heatmap_resid_post.svg; do
    [ -s "$S/$f" ] && pass "wrote $f" || fail "missing $f"
done
H=$S/report.html
has "$H" 'data:image/png;base64,iVBORw0KGgo' "figures inline as PNG data URIs"
n_img=$(grep -o 'data:image/png;base64,' "$H" | wc -l)
[ "$n_img" -eq 4 ] && pass "4 images (2 sites × 2)" || fail "$n_img images, want 4"
has "$H" '<h3 id="s0-mlp_in">mlp_in</h3>' "section for mlp_in"
has "$H" '<h3 id="s0-resid_post">resid_post</h3>' "section for resid_post"
has "$H" '<b>-3.0000 †</b>' "best cell of mlp_in (layer 1, token 2, α = 1) bold in its table"
has "$H" '<td>resid_post</td><td>2</td><td>1</td><td>2</td><td>-1.0000 †</td>' "best-cell row of resid_post"
has "$H" '>2.0000 †<' "table holds +2 (resid_post, layer 2, token 1)"
has "$H" 'winogrande:dev.jsonl' "settings from summary.json"
has "$H" 'steer report ' "the report's command line"
has "$S/report.md" '\(dkl_mlp_in\.png\)' "markdown links the figure beside it"
has "$S/report.md" '^\| 1 \| -1\.5000 † \| \*\*-3\.0000 †\*\* \|' "markdown table row of layer 1"

# -o FILE.html, several DIRs.
S2=$TMP/sweep2
make_sweep "$S2"
mkdir -p "$TMP/cmp"
ok "report two DIRs -o" "$STEER" report "$S" "$S2" -o "$TMP/cmp/both.html" --quiet
[ -s "$TMP/cmp/both.html" ] && [ -s "$TMP/cmp/both.md" ] && pass "wrote both.html + both.md" || fail "-o outputs"
[ ! -s "$TMP/stdout.txt" ] && pass "--quiet prints nothing" || fail "--quiet printed: $(cat "$TMP/stdout.txt")"
n_sec=$(grep -c '^<h2>ΔKL sweep: ' "$TMP/cmp/both.html")
[ "$n_sec" -eq 2 ] && pass "one section per DIR" || fail "$n_sec sections, want 2"
has "$TMP/cmp/both.md" '\(\.\./sweep2/heatmap_resid_post\.png\)' "markdown links relative to itself"
has "$TMP/cmp/both.html" '<tr><th>items</th><td>12</td></tr>' "items from the table"
has "$TMP/cmp/both.html" '<tr><th>wall time \(s\)</th><td>1.5</td></tr>' "wall time from summary.json"

# A DIR whose dkl.csv has no summary.json / items.csv beside it.
S3=$TMP/sweep3
mkdir -p "$S3"
cp "$S/dkl.csv" "$S3/"
expect_fail "dkl.csv alone" "sweep3/summary.json" "$STEER" report "$S3" -o "$TMP/out/r.html"

# Bad input.
expect_fail "missing DIR" "nope: no such directory" "$STEER" report "$TMP/nope" -o "$TMP/out/r.html"
B=$TMP/bad
mkdir -p "$B"
expect_fail "empty DIR" "bad: no results found (none of dkl.csv" "$STEER" report "$B" -o "$TMP/out/r.html"
cp "$S/dkl.csv" "$S/summary.json" "$B/"
printf 'item,id,site,layer,alpha,token,kl_steered,kl_base,dkl\n0,a,mlp_in,0,0,1,1,0.5,0.5\n0,a,mlp_in,0,0,2,1,0.5\n' >"$B/items.csv"
expect_fail "malformed items.csv line" "bad/items.csv:3: expected 9 fields" "$STEER" report "$S" "$B" -o "$TMP/out/r.html"
expect_fail "malformed line, default OUT" "bad/items.csv:3" "$STEER" report "$B"
left=$(ls "$B" | tr '\n' ' ')
[ "$left" = "dkl.csv items.csv summary.json " ] && pass "nothing written into the bad DIR" || fail "bad DIR holds: $left"
expect_fail "-o into a missing directory" "out/none" "$STEER" report "$S" -o "$TMP/out/none/r.html"
expect_fail "-o neither .html nor a directory" "-o" "$STEER" report "$S" -o "$TMP/out/r.txt"
expect_fail "no DIR" "missing argument" "$STEER" report
finish
