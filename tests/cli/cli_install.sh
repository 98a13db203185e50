#!/usr/bin/env bash
# cli_install.sh STEER REPO — `cmake --install` of the build tree that holds
# STEER into a temporary prefix installs the headers, the shared libraries
# with sonames, the static libraries, the CLI, pkg-config files and a CMake
# package; examples/steer_vector.c builds against that prefix with
# `pkg-config --cflags --libs steer` (shared), with `pkg-config --static`
# (libsteer.a) and with find_package(steer), and all three print the same
# texts, whose unsteered half is what `steer generate` prints. Every STEER_API
# function links through the .pc file of its header. libsteer.so needs no
# cairo (nor X11); libsteer-exp.so does.
set -u
STEER=${1:?usage: cli_install.sh STEER REPO}
REPO=${2:?usage: cli_install.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
BUILD=$(cd "$(dirname "$STEER")" && pwd)
MODEL=$REPO/models/stories260K/stories260K.bin
EXAMPLE=$REPO/examples/steer_vector.c
PREFIX=$TMP/prefix
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
LIBDIR=$(cache CMAKE_INSTALL_LIBDIR)
LIBDIR=$PREFIX/${LIBDIR:-lib}
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
CC=${CC:-cc}
# A sanitizer build's libraries need the sanitizer runtime in the program too.
SAN=""
[ "$(cache STEER_SANITIZE)" = ON ] && SAN="-fsanitize=address,undefined"
CFLAGS="-std=c11 -O2 -Wall -Wextra -Werror $SAN"

# run_to NAME OUT CMD...: CMD succeeds with its stdout in OUT; stderr shown on failure.
run_to() {
    local name=$1 out=$2
    shift 2
    if "$@" >"$out" 2>"$TMP/run.err"; then pass "$name"; else
        fail "$name: exit $?"
        sed 's/^/     | /' "$TMP/run.err" | tail -25
        return 1
    fi
}

# run_ok NAME LOG CMD...: CMD succeeds; its output goes to LOG, shown on failure.
run_ok() {
    local name=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then pass "$name"; else
        fail "$name: exit $?"
        sed 's/^/     | /' "$log" | tail -25
        return 1
    fi
}

# section FILE HEADER_REGEX: the lines after the header line matching the
# regex up to the next "--- " line.
section() { awk -v h="$2" '/^--- /{on = ($0 ~ h); next} on' "$1"; }

# same NAME A B: files A and B are identical.
same() {
    if cmp -s "$2" "$3"; then pass "$1"; else
        fail "$1"
        diff "$2" "$3" | head -10 | sed 's/^/     | /'
    fi
}

# ---------------------------------------------------------------- 1. install
run_ok "cmake --install $(basename "$BUILD") --prefix TMP" "$TMP/install.log" \
    cmake --install "$BUILD" --prefix "$PREFIX" || { finish; }

missing=""
for f in include/steer.h include/steer_train.h include/steer_exp.h bin/steer; do
    [ -f "$PREFIX/$f" ] || missing+=" $f"
done
for lib in libsteer libsteer-train libsteer-exp; do
    [ -f "$LIBDIR/$lib.so.0.1.0" ] && [ ! -L "$LIBDIR/$lib.so.0.1.0" ] || missing+=" $lib.so.0.1.0"
    [ "$(readlink "$LIBDIR/$lib.so.0")" = "$lib.so.0.1.0" ] || missing+=" $lib.so.0->$lib.so.0.1.0"
    [ "$(readlink "$LIBDIR/$lib.so")" = "$lib.so.0" ] || missing+=" $lib.so->$lib.so.0"
    [ -f "$LIBDIR/$lib.a" ] || missing+=" $lib.a"
    soname=$(readelf -d "$LIBDIR/$lib.so.0.1.0" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = "$lib.so.0" ] || missing+=" soname($lib)=$soname"
done
for f in pkgconfig/steer.pc pkgconfig/steer-train.pc pkgconfig/steer-exp.pc \
    cmake/steer/steerConfig.cmake cmake/steer/steerConfigVersion.cmake cmake/steer/steerTargets.cmake; do
    [ -f "$LIBDIR/$f" ] || missing+=" lib/$f"
done
if [ -z "$missing" ]; then
    pass "installed: 3 headers, bin/steer, 3 x (.so.0.1.0, .so.0, .so, .a) with sonames, 3 .pc, CMake package"
else
    fail "install is missing or wrong:$missing"
    (cd "$PREFIX" && find . | sort | sed 's/^/     | /')
fi
if grep -rq "$BUILD" "$LIBDIR"/pkgconfig "$LIBDIR"/cmake/steer; then
    fail "installed .pc / CMake files name the build tree: $(grep -rl "$BUILD" "$LIBDIR"/pkgconfig "$LIBDIR"/cmake/steer)"
else
    pass "installed .pc and CMake files do not name the build tree"
fi
if readelf -d "$LIBDIR"/libsteer*.so.0.1.0 | grep -E 'R(UN)?PATH' | grep -qF "$BUILD"; then
    fail "installed libraries keep the build tree in their RUNPATH"
else
    pass "installed libraries' RUNPATH does not name the build tree"
fi

# ---------------------------------------------------------------- 2. pkg-config
version=$(sed -n 's/^#define STEER_VERSION "\(.*\)"/\1/p' "$PREFIX/include/steer.h")
for pc in steer steer-train steer-exp; do
    v=$(pkg-config --modversion $pc 2>&1)
    [ -n "$version" ] && [ "$v" = "$version" ] && pass "pkg-config --modversion $pc = $v" ||
        fail "pkg-config --modversion $pc = '$v', steer.h says '$version'"
done
# has_words NAME STRING WORD...: every WORD is a word of STRING.
has_words() {
    local name=$1 s=" $2 " w miss=""
    shift 2
    for w in "$@"; do [[ "$s" == *" $w "* ]] || miss+=" $w"; done
    [ -z "$miss" ] && pass "$name has $*" || fail "$name lacks$miss: $s"
}
has_words "pkg-config --cflags steer" "$(pkg-config --cflags steer)" "-I$PREFIX/include"
has_words "pkg-config --libs steer" "$(pkg-config --libs steer)" "-L$LIBDIR" -lsteer
has_words "pkg-config --libs steer-exp" "$(pkg-config --libs steer-exp)" -lsteer-exp -lsteer-train -lsteer
has_words "pkg-config --static --libs steer" "$(pkg-config --static --libs steer)" \
    -lsteer -fopenmp -lopenblas -lcjson -lpcre2-8 -lm
has_words "pkg-config --static --libs steer-train" "$(pkg-config --static --libs steer-train)" \
    -lsteer-train -lsteer -lcairo -fopenmp -lcjson
if [[ " $(pkg-config --static --libs steer) " == *-lcairo* ]]; then
    fail "pkg-config --static --libs steer names cairo"
else
    pass "pkg-config --static --libs steer does not name cairo"
fi

# static_libs PC: `pkg-config --static --libs PC` with the steer libraries
# taken from their .a files (the system libraries stay shared).
static_libs() {
    local w out=""
    for w in $(pkg-config --static --libs "$1"); do
        case $w in
        -lsteer | -lsteer-train | -lsteer-exp) out+=" -Wl,-Bstatic $w -Wl,-Bdynamic" ;;
        *) out+=" $w" ;;
        esac
    done
    echo "$out"
}

# ---------------------------------------------------------------- 3. the example
expected=$TMP/expected.txt
"$STEER" generate -m "$MODEL" -p "Once upon a time" -n 48 --temp 0 >"$expected" 2>"$TMP/gen.err" ||
    fail "steer generate: $(cat "$TMP/gen.err")"
"$PREFIX/bin/steer" generate -m "$MODEL" -p "Once upon a time" -n 48 --temp 0 >"$TMP/installed_gen.txt" 2>&1
same "installed bin/steer generate prints what the build's steer prints" "$expected" "$TMP/installed_gen.txt"

# shellcheck disable=SC2046
run_ok "cc steer_vector.c \$(pkg-config --cflags --libs steer)" "$TMP/cc_shared.log" \
    $CC $CFLAGS -o "$TMP/sv_shared" "$EXAMPLE" $(pkg-config --cflags --libs steer)
# shellcheck disable=SC2046
run_ok "cc steer_vector.c \$(pkg-config --cflags steer) with libsteer.a \$(pkg-config --static --libs steer)" \
    "$TMP/cc_static.log" \
    $CC $CFLAGS -o "$TMP/sv_static" "$EXAMPLE" $(pkg-config --cflags steer) $(static_libs steer)
if [ -x "$TMP/sv_static" ]; then
    if readelf -d "$TMP/sv_static" | grep -q 'NEEDED.*libsteer'; then
        fail "the static build still needs a shared libsteer: $(readelf -d "$TMP/sv_static" | grep NEEDED | tr -s ' ')"
    else
        pass "the static build needs no shared libsteer"
    fi
fi
if [ -x "$TMP/sv_shared" ]; then
    lib=$(LD_LIBRARY_PATH=$LIBDIR ldd "$TMP/sv_shared" | awk '$1 == "libsteer.so.0" {print $3}')
    [ "$lib" = "$LIBDIR/libsteer.so.0" ] && pass "the shared build loads libsteer.so.0 from the prefix" ||
        fail "the shared build loads libsteer.so.0 from '$lib', not $LIBDIR"
fi

# check_run NAME OUT: OUT holds both texts, non-empty, different, and the
# unsteered one is `steer generate`'s.
check_run() {
    section "$2" '^--- unsteered' >"$TMP/plain.txt"
    section "$2" '^--- steered' >"$TMP/steered.txt"
    if [ -s "$TMP/plain.txt" ] && [ -s "$TMP/steered.txt" ]; then
        pass "$1: both texts non-empty ($(wc -c <"$TMP/plain.txt") and $(wc -c <"$TMP/steered.txt") bytes)"
    else
        fail "$1: expected an unsteered and a steered text:"
        sed 's/^/     | /' "$2"
    fi
    if ! cmp -s "$TMP/plain.txt" "$TMP/steered.txt"; then pass "$1: the steered text differs"; else
        fail "$1: the steered text is the unsteered one: $(cat "$TMP/steered.txt")"
    fi
    same "$1: the unsteered text is steer generate's" "$expected" "$TMP/plain.txt"
}
if [ -x "$TMP/sv_shared" ] &&
    run_to "steer_vector (shared) runs" "$TMP/sv_shared.txt" \
        env LD_LIBRARY_PATH="$LIBDIR" "$TMP/sv_shared" "$MODEL" "Once upon a time" 3 0.5 48; then
    check_run "steer_vector (shared)" "$TMP/sv_shared.txt"
    sed 's/^/     | /' "$TMP/sv_shared.txt"
fi
if [ -x "$TMP/sv_static" ] &&
    run_to "steer_vector (static) runs" "$TMP/sv_static.txt" \
        "$TMP/sv_static" "$MODEL" "Once upon a time" 3 0.5 48; then
    same "steer_vector (static) prints what the shared build prints" "$TMP/sv_shared.txt" "$TMP/sv_static.txt"
fi

# ---------------------------------------------------------------- 4. every public function links
# One program takes the address of every STEER_API function of a header (and
# the headers below it); it links through that header's .pc file, shared and
# static, and runs.
api_names() { perl -0777 -ne 'print "$1\n" while /^[ \t]*STEER_API\b[^;{]*?\b(steer_\w+)\s*\(/mg' "$@"; }
declare -A HEADERS=([steer]="steer.h" [steer-train]="steer.h steer_train.h"
    [steer-exp]="steer.h steer_train.h steer_exp.h")
for pc in steer steer-train steer-exp; do
    src=$TMP/api_${pc}.c
    hdrs=()
    for h in ${HEADERS[$pc]}; do hdrs+=("$PREFIX/include/$h"); done
    {
        for h in ${HEADERS[$pc]}; do echo "#include <$h>"; done
        echo '#include <stdio.h>'
        echo 'typedef void (*fn)(void);'
        echo 'static const fn fns[] = {'
        api_names "${hdrs[@]}" | sort -u | sed 's/.*/    (fn)&,/'
        echo '};'
        echo 'int main(void) { int n = 0; for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) n += fns[i] != 0;'
        echo '    printf("%d\n", n); return 0; }'
    } >"$src"
    n=$(api_names "${hdrs[@]}" | sort -u | wc -l)
    # shellcheck disable=SC2046
    if run_ok "$n STEER_API functions of ${HEADERS[$pc]// /, } link with pkg-config --libs $pc" "$TMP/api.log" \
        $CC $CFLAGS -o "$TMP/api_shared" "$src" $(pkg-config --cflags --libs $pc); then
        out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/api_shared" 2>&1)
        [ "$out" = "$n" ] && pass "  ... and run ($out functions)" || fail "  ... run: $out"
    fi
    # shellcheck disable=SC2046
    if run_ok "  ... and statically with pkg-config --static --libs $pc" "$TMP/api.log" \
        $CC $CFLAGS -o "$TMP/api_static" "$src" $(pkg-config --cflags $pc) $(static_libs $pc); then
        out=$("$TMP/api_static" 2>&1)
        [ "$out" = "$n" ] && pass "  ... and run ($out functions)" || fail "  ... run: $out"
    fi
done

# ---------------------------------------------------------------- 5. find_package(steer)
mkdir -p "$TMP/cmk"
cat >"$TMP/cmk/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(steer_example C)
find_package(steer $version REQUIRED)
add_executable(sv_shared "$EXAMPLE")
target_link_libraries(sv_shared PRIVATE steer::steer)
add_executable(sv_static "$EXAMPLE")
target_link_libraries(sv_static PRIVATE steer::steer-static)
add_executable(api_exp "$TMP/api_steer-exp.c")
target_link_libraries(api_exp PRIVATE steer::steer-exp)
add_executable(api_exp_static "$TMP/api_steer-exp.c")
target_link_libraries(api_exp_static PRIVATE steer::steer-exp-static)
EOF
if run_ok "find_package(steer $version) configures" "$TMP/cmk.log" \
    cmake -S "$TMP/cmk" -B "$TMP/cmk/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" &&
    run_ok "  ... and builds the example with steer::steer, steer::steer-static, steer::steer-exp(-static)" \
        "$TMP/cmk.log" cmake --build "$TMP/cmk/build" -j2; then
    LD_LIBRARY_PATH=$LIBDIR "$TMP/cmk/build/sv_shared" "$MODEL" "Once upon a time" 3 0.5 48 >"$TMP/cmk_shared.txt" 2>&1
    same "steer::steer build prints what the pkg-config build prints" "$TMP/sv_shared.txt" "$TMP/cmk_shared.txt"
    "$TMP/cmk/build/sv_static" "$MODEL" "Once upon a time" 3 0.5 48 >"$TMP/cmk_static.txt" 2>&1
    same "steer::steer-static build prints what the pkg-config build prints" "$TMP/sv_shared.txt" "$TMP/cmk_static.txt"
    n=$(api_names "$PREFIX"/include/steer*.h | sort -u | wc -l)
    for exe in api_exp api_exp_static; do
        out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/cmk/build/$exe" 2>&1)
        [ "$out" = "$n" ] && pass "$exe (every STEER_API function) runs" || fail "$exe: $out"
    done
    if readelf -d "$TMP/cmk/build/sv_static" | grep -q 'NEEDED.*libsteer'; then
        fail "steer::steer-static build needs a shared libsteer"
    else
        pass "steer::steer-static build needs no shared libsteer"
    fi
fi

# ---------------------------------------------------------------- 6. dependencies
deps=$(ldd "$LIBDIR/libsteer.so" 2>&1)
if grep -Eq 'libcairo|libX11|libxcb|libXrender|libpixman' <<<"$deps"; then
    fail "ldd libsteer.so shows cairo/X11:"
    sed 's/^/     | /' <<<"$deps"
else
    pass "ldd libsteer.so: no cairo, no X11 ($(wc -l <<<"$deps") libraries)"
fi
for lib in libsteer-train libsteer-exp; do
    deps=$(ldd "$LIBDIR/$lib.so" 2>&1)
    grep -q 'libcairo\.so' <<<"$deps" && pass "ldd $lib.so shows libcairo" || fail "ldd $lib.so shows no libcairo"
    # RUNPATH $ORIGIN: the lower tiers are found beside it, without LD_LIBRARY_PATH.
    found=$(awk '$1 == "libsteer.so.0" {print $3}' <<<"$deps")
    [ "$found" = "$LIBDIR/libsteer.so.0" ] && pass "$lib.so finds libsteer.so.0 beside it" ||
        fail "$lib.so finds libsteer.so.0 at '$found', not $LIBDIR"
done

finish
