#!/usr/bin/env bash
# cli_exports.sh STEER REPO — the installed shared libraries (cmake --install
# of the build tree that holds STEER into a temporary prefix) export only
# steer_-prefixed symbols (nm -D --defined-only), and every STEER_API function
# declared in include/steer.h, steer_train.h and steer_exp.h is exported by
# exactly one of libsteer, libsteer-train and libsteer-exp — one that the
# header's pkg-config file links: steer.h by libsteer; steer_train.h by
# libsteer-train or libsteer; steer_exp.h by any of the three.
set -u
STEER=${1:?usage: cli_exports.sh STEER REPO}
REPO=${2:?usage: cli_exports.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
BUILD=$(cd "$(dirname "$STEER")" && pwd)
PREFIX=$TMP/prefix
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
LIBDIR=$PREFIX/${LIBDIR:-lib}
LIBS="libsteer libsteer-train libsteer-exp"

if cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1; then
    pass "cmake --install $(basename "$BUILD") --prefix TMP"
else
    fail "cmake --install $BUILD: exit $?"
    sed 's/^/     | /' "$TMP/install.log" | tail -20
    finish
fi

# 1. Only steer_ symbols. nm -D --defined-only: "ADDRESS TYPE NAME[@VERSION]".
for lib in $LIBS; do
    so=$LIBDIR/$lib.so
    if ! nm -D --defined-only "$so" >"$TMP/nm.txt" 2>"$TMP/nm.err"; then
        fail "nm -D $lib.so: $(cat "$TMP/nm.err")"
        continue
    fi
    awk 'NF >= 3 {sub(/@.*/, "", $3); print $3}' "$TMP/nm.txt" | sort -u >"$TMP/$lib.syms"
    grep -v '^steer_' "$TMP/$lib.syms" >"$TMP/$lib.bad"
    total=$(wc -l <"$TMP/$lib.syms")
    bad=$(wc -l <"$TMP/$lib.bad")
    if [ "$total" -gt 0 ] && [ "$bad" -eq 0 ]; then
        pass "$lib.so exports $total symbols, all steer_*"
    else
        fail "$lib.so exports $bad symbol(s) without the steer_ prefix (of $total):"
        tr '\n' ' ' <"$TMP/$lib.bad" | fold -s -w 100 | sed 's/^/     | /'
        echo
    fi
done

# 2. Every STEER_API function of the public headers, exported by exactly one
#    library, one its header's .pc file links.
api_names() { perl -0777 -ne 'print "$1\n" while /^[ \t]*STEER_API\b[^;{]*?\b(steer_\w+)\s*\(/mg' "$1" | sort -u; }
declare -A ALLOWED=([steer.h]="libsteer" [steer_train.h]="libsteer-train libsteer"
    [steer_exp.h]="libsteer-exp libsteer-train libsteer")
: >"$TMP/declared.txt"
for h in steer.h steer_train.h steer_exp.h; do
    api_names "$REPO/include/$h" >"$TMP/$h.api"
    cat "$TMP/$h.api" >>"$TMP/declared.txt"
    n=$(wc -l <"$TMP/$h.api")
    missing="" twice="" misplaced="" where=""
    declare -A count=()
    while read -r fn; do
        in=""
        for lib in $LIBS; do
            [ -f "$TMP/$lib.syms" ] && grep -qx -- "$fn" "$TMP/$lib.syms" && in+=" $lib"
        done
        set -- $in
        case $# in
        0) missing+=" $fn" ;;
        1) count[$1]=$((${count[$1]:-0} + 1))
            [[ " ${ALLOWED[$h]} " == *" $1 "* ]] || misplaced+=" $fn($1)" ;;
        *) twice+=" $fn(${in# })" ;;
        esac
    done <"$TMP/$h.api"
    for lib in $LIBS; do [ -n "${count[$lib]:-}" ] && where+=" $lib.so ${count[$lib]},"; done
    unset count
    [ "$n" -gt 0 ] || fail "$h: no STEER_API function found (parser out of date?)"
    if [ -z "$missing$twice$misplaced" ]; then
        pass "$h: $n STEER_API functions, each exported once:${where%,}"
    else
        [ -z "$missing" ] || fail "$h: STEER_API functions exported by no library:$missing"
        [ -z "$twice" ] || fail "$h: STEER_API functions exported by more than one library:$twice"
        [ -z "$misplaced" ] || fail "$h: functions outside the libraries its .pc links (${ALLOWED[$h]}):$misplaced"
    fi
done

# 3. Counts: what each library exports beyond the public headers (the private
#    steer_* ABI between the three libraries).
sort -u "$TMP/declared.txt" >"$TMP/declared.sorted"
for lib in $LIBS; do
    [ -f "$TMP/$lib.syms" ] || continue
    public=$(comm -12 "$TMP/$lib.syms" "$TMP/declared.sorted" | wc -l)
    private=$(comm -23 "$TMP/$lib.syms" "$TMP/declared.sorted" | grep -c '^steer_')
    echo "     $lib.so: $(wc -l <"$TMP/$lib.syms") exported = $public public (STEER_API) + $private private steer_* ABI"
done

finish
