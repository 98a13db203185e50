#!/usr/bin/env bash
# cli_report.sh STEER REPO — `steer report` on a sweep fixture (dkl.csv with
# 2 sites × 3 layers × 3 α × 2 tokens of known values, ΔKL = α·c, and a
# summary.json): the figures are drawn, report.html embeds them as data URIs
# and holds the site names and the table's numbers, report.md links the PNGs;
# -o and several DIRs; bad input (missing DIR, malformed dkl.csv line, empty
# DIR, bad -o) as one-line errors with nothing written.
set -u
STEER=${1:?usage: cli_report.sh STEER REPO}
REPO=${2:?usage: cli_report.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"

# make_sweep DIR: the fixture (c[site][layer][token] as in tests/unit/test_report.c).
make_sweep() {
    mkdir -p "$1"
    awk 'BEGIN {
        split("-1.0 -0.5 -1.5 -3.0 0.5 1.0 -0.2 -0.1 0.3 0.4 2.0 -1.0", c, " ");
        split("mlp_in resid_post", site, " "); split("0 0.5 1", al, " ");
        print "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n";
        for (s = 1; s <= 2; s++) for (l = 0; l < 3; l++) for (a = 1; a <= 3; a++) for (k = 1; k <= 2; k++)
            printf "base260,ft260,%s,%d,%s,%d,%.6f,%.6f,12\n", site[s], l, al[a], k,
                   al[a] * c[(s - 1) * 6 + l * 2 + k], 0.1 * al[a];
    }' >"$1/dkl.csv"
    cat >"$1/summary.json" <<'EOF'
{"format": "steer-sweep/1", "base": "base260", "ft": "ft260", "arch": "llama", "n_layers": 3, "d_model": 64,
 "data": "winogrande:dev.jsonl", "n_items": 12, "tokens": 2, "sites": ["mlp_in", "resid_post"],
 "layers": [0, 1, 2], "alphas": [0, 0.5, 1], "continuation": "ft", "positions": "all", "shard": null,
 "command": "steer sweep --fixture", "kl_base_mean": [0.5, 0.75], "best": {}, "wall_s": 1.5}
EOF
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
has "$H" '<b>-3.0000</b>' "best cell of mlp_in (layer 1, token 2, α = 1) bold in its table"
has "$H" '<td>resid_post</td><td>2</td><td>1</td><td>2</td><td>-1.0000</td>' "best-cell row of resid_post"
has "$H" '>2.0000<' "table holds +2 (resid_post, layer 2, token 1)"
has "$H" 'winogrande:dev.jsonl' "settings from summary.json"
has "$H" 'steer report ' "the report's command line"
has "$S/report.md" '\(dkl_mlp_in\.png\)' "markdown links the figure beside it"
has "$S/report.md" '^\| 1 \| -1\.5000 \| \*\*-3\.0000\*\* \|' "markdown table row of layer 1"

# -o FILE.html, several DIRs (the second without summary.json).
S2=$TMP/sweep2
make_sweep "$S2"
rm "$S2/summary.json"
mkdir -p "$TMP/cmp"
ok "report two DIRs -o" "$STEER" report "$S" "$S2" -o "$TMP/cmp/both.html" --quiet
[ -s "$TMP/cmp/both.html" ] && [ -s "$TMP/cmp/both.md" ] && pass "wrote both.html + both.md" || fail "-o outputs"
[ ! -s "$TMP/stdout.txt" ] && pass "--quiet prints nothing" || fail "--quiet printed: $(cat "$TMP/stdout.txt")"
n_sec=$(grep -c '^<h2>ΔKL sweep: ' "$TMP/cmp/both.html")
[ "$n_sec" -eq 2 ] && pass "one section per DIR" || fail "$n_sec sections, want 2"
has "$TMP/cmp/both.md" '\(\.\./sweep2/heatmap_resid_post\.png\)' "markdown links relative to itself"
has "$TMP/cmp/both.html" '12 \(largest n in dkl.csv\)' "DIR without summary.json"

# Bad input.
expect_fail "missing DIR" "nope: no such directory" "$STEER" report "$TMP/nope" -o "$TMP/out/r.html"
B=$TMP/bad
mkdir -p "$B"
expect_fail "empty DIR" "bad: no results found (none of dkl.csv" "$STEER" report "$B" -o "$TMP/out/r.html"
printf 'base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nb,f,mlp_in,0,1,1,-0.5,0.1,3\nb,f,mlp_in,1,1,1,-0.5\n' >"$B/dkl.csv"
expect_fail "malformed dkl.csv line" "bad/dkl.csv:3: expected 9 fields" "$STEER" report "$S" "$B" -o "$TMP/out/r.html"
expect_fail "malformed line, default OUT" "bad/dkl.csv:3" "$STEER" report "$B"
left=$(ls "$B")
[ "$left" = "dkl.csv" ] && pass "nothing written into the bad DIR" || fail "bad DIR holds: $left"
expect_fail "-o into a missing directory" "out/none" "$STEER" report "$S" -o "$TMP/out/none/r.html"
expect_fail "-o neither .html nor a directory" "-o" "$STEER" report "$S" -o "$TMP/out/r.txt"
expect_fail "no DIR" "missing argument" "$STEER" report
finish
