#!/usr/bin/env bash
# Make the real Pulumi CLI usable on a machine that reaches package registries only.
#
#   bash scripts/setup/pulumi.sh           # idempotent; a rerun is a fast no-op (~10 ms)
#   bash scripts/setup/pulumi.sh --force   # rebuild everything
#   . scripts/env.sh                       # then: pulumi version  ->  v3.248.0
#
# The official installer and plugin downloads cannot be reached, so the engine and the Node.js
# language host are built from Go modules (Go module proxy) once, OUTSIDE the repo, under
#   CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
#
#   $CACHE/pulumi/bin/pulumi                         CLI/engine v3.248.0 (= the @pulumi/pulumi 3.248.0 pin)
#   $CACHE/pulumi/bin/pulumi-language-nodejs         Node.js language host (see LANGUAGE HOST below)
#   $CACHE/pulumi/bin/pulumi-resource-pulumi-nodejs  dynamic-provider shim, copied from node_modules/@pulumi/pulumi
#   $CACHE/pulumi/home/                              PULUMI_HOME (exported by scripts/env.sh)
#   $CACHE/pulumi/go/                                GOPATH, module cache and build cache (~3.5 GB; reused on rebuilds)
#   $CACHE/pulumi/logs/                              full go output of the last build of each part
#   $CACHE/pulumi/parts/                             one record per built part (a rerun rebuilds only what is missing)
#   $CACHE/pulumi/stamp                              written last, names the versions; the no-op check reads it
#
# The library needs no provider plugin besides the Node.js dynamic-provider shim: its remote
# commands are its own dynamic provider (over ssh2), not @pulumi/command. The language host and
# the shim are "bundled" plugins: the engine takes them from beside the pulumi binary (and from
# PATH, which scripts/env.sh sets), so nothing goes into PULUMI_HOME's plugin cache.
#
# LANGUAGE HOST. The v3.248.0 host is its own untagged module
# (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3); the Go module proxy
# reachable here does not serve it at any version (403 "This module version is not available"
# for @v/list, for the pseudo-versions of the v3.248.0 and pkg/v3.248.0 commits, and for
# commit hashes). The newest host that ships INSIDE a served module is the package
# github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs of sdk/v3 v3.68.0 (it moved
# into its own module in v3.69.0), so that is what gets built. It drives the 3.248.0 engine
# and the 3.248.0 Node SDK (up/preview/destroy/refresh, config, secrets, dynamic providers),
# with these known limits of an old host:
#   - Pulumi.yaml runtime options (typescript, tsconfig, nodeargs, packagemanager) are NOT read:
#     the new engine passes them in a field the old host does not know. The host always runs
#     with typescript=true (ts-node from the program's node_modules), which is what we want.
#   - pulumi.runtime.getRootDirectory() is "" (the old host passes no --root-directory).
#   - Resource-monitor RPCs newer than mid-2023 (registerResourceTransform / invoke transforms,
#     resource hooks, parameterized packages) are answered "unimplemented" by its monitor proxy.
#
# Environment:
#   SGLANG_GATEWAY_CACHE                  cache root (default ~/.cache/sglang-gateway)
#   SGLANG_GATEWAY_PULUMI_USE_SYSTEM      0 = ignore a usable pulumi already on PATH (default 1)
#   GOPROXY / GOSUMDB / GOTOOLCHAIN       honoured as set; GOPATH, GOMODCACHE, GOCACHE, GOFLAGS are set here
set -euo pipefail

PULUMI_VERSION=v3.248.0                 # must equal the @pulumi/pulumi pin in package.json
LANGHOST_SDK_VERSION=v3.68.0            # newest sdk/v3 that still contains the Node.js host package
# pkg/go.mod's own non-relative replace; a wrapper module has to repeat it to build what upstream builds.
CLIPBOARD_REPLACE=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
PC=$CACHE/pulumi
BIN=$PC/bin
PHOME=$PC/home
STAMP=$PC/stamp
LOGS=$PC/logs

FORCE=0
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "pulumi.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[pulumi-setup] %s\n' "$*"; }
die() { printf '[pulumi-setup] ERROR: %s\n' "$*" >&2; exit 1; }

# The stamp names every version that went into the cache.
expected_stamp() {
    printf 'pulumi=%s\n' "$PULUMI_VERSION"
    printf 'pulumi-language-nodejs=sdk/v3@%s\n' "$LANGHOST_SDK_VERSION"
    printf 'pulumi-resource-pulumi-nodejs=@pulumi/pulumi@%s\n' "${PULUMI_VERSION#v}"
}

stamp_ok() {
    [ -f "$STAMP" ] || return 1
    [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-nodejs" ] && [ -x "$BIN/pulumi-resource-pulumi-nodejs" ] \
        || return 1
    [ "$(cat "$STAMP")" = "$(expected_stamp)" ]
}

# A pulumi on PATH that is not ours counts when it is v3 >= 3.248 and the language host and
# the dynamic-provider shim are beside it or on PATH.
system_pulumi_usable() {
    [ "${SGLANG_GATEWAY_PULUMI_USE_SYSTEM:-1}" = 1 ] || return 1
    local p dir v plugin
    p=$(command -v pulumi 2>/dev/null) || return 1
    dir=$(dirname "$(readlink -f "$p")")
    [ "$dir" != "$(readlink -f "$BIN" 2>/dev/null || echo "$BIN")" ] || return 1
    v=$(PULUMI_SKIP_UPDATE_CHECK=true timeout 30 "$p" version 2>/dev/null | head -n1) || return 1
    [[ $v =~ ^v3\.([0-9]+)\.[0-9]+$ ]] && [ "${BASH_REMATCH[1]}" -ge 248 ] || return 1
    for plugin in pulumi-language-nodejs pulumi-resource-pulumi-nodejs; do
        [ -x "$dir/$plugin" ] || command -v "$plugin" >/dev/null 2>&1 || return 1
    done
    log "using pulumi $v already on PATH ($p); nothing to build"
}

# ---- fast path -------------------------------------------------------------------------
if [ "$FORCE" = 0 ]; then
    if stamp_ok; then
        log "pulumi $PULUMI_VERSION ready in $BIN"
        exit 0
    fi
    if system_pulumi_usable; then
        exit 0
    fi
fi

# ---- preconditions ---------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build Pulumi from Go modules)"
command -v node >/dev/null 2>&1 || die "node is not on PATH"
SDK_PKG=$REPO/node_modules/@pulumi/pulumi
[ -f "$SDK_PKG/package.json" ] || die "$SDK_PKG is missing: run 'npm ci' in $REPO first"
sdk_version=$(node -p "require(process.argv[1]).version" "$SDK_PKG/package.json" 2>/dev/null || true)
[ "$sdk_version" = "${PULUMI_VERSION#v}" ] \
    || log "warning: node_modules has @pulumi/pulumi $sdk_version, this script builds the engine $PULUMI_VERSION"

mkdir -p "$BIN" "$LOGS" "$PHOME" "$PC/go" "$PC/parts"

# One build at a time (a test runner and a developer may start this together).
exec 9>"$PC/.lock"
if ! flock -n 9; then
    log "another pulumi setup is running; waiting for it"
    flock 9
fi
if [ "$FORCE" = 0 ] && stamp_ok; then
    log "pulumi $PULUMI_VERSION was set up by the other run"
    exit 0
fi
rm -f "$STAMP"

export GOPATH=$PC/go
export GOMODCACHE=$PC/go/mod
export GOCACHE=$PC/go/build-cache
# -mod=mod: the wrapper modules have no go.sum until `go get` writes one;
# -modcacherw: keep the module cache deletable with a plain rm -rf.
export GOFLAGS="-mod=mod -modcacherw -buildvcs=false"
export CGO_ENABLED=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pulumi-setup.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# run_logged NAME CMD...: full output appended to $LOGS/NAME.log, its tail shown on failure.
run_logged() {
    local name=$1; shift
    if ! "$@" >>"$LOGS/$name.log" 2>&1; then
        echo "---- last lines of $LOGS/$name.log ----" >&2
        tail -n 25 "$LOGS/$name.log" >&2
        return 1
    fi
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# Per-part records, so that a rerun after a partial failure rebuilds only what is missing.
# --force ignores them.
part_done() { [ "$FORCE" = 0 ] && [ -x "$3" ] && [ "$(cat "$PC/parts/$1" 2>/dev/null)" = "$2" ]; }
mark_part() { printf '%s\n' "$2" >"$PC/parts/$1"; }

# build_in_wrapper NAME OUT LDFLAG MAIN_PKG MODULE@VERSION...: a throwaway module that requires
# the given modules and builds MAIN_PKG from the module cache. This sidesteps the relative
# `replace ... => ../sdk` lines in Pulumi's own go.mod files, which make
# `go install pkg@version` refuse to build.
build_in_wrapper() {
    local name=$1 out=$2 ldflag=$3 main_pkg=$4; shift 4
    local dir=$TMP/$name
    mkdir -p "$dir"
    : >"$LOGS/$name.log"
    (
        cd "$dir" || exit 1
        printf 'module sglang-gateway.local/pulumi-build/%s\n\ngo 1.21\n' "$name" >go.mod
        if [ "$name" = pulumi ]; then go mod edit -replace "$CLIPBOARD_REPLACE" || exit 1; fi
        run_logged "$name" go get "$@" || exit 1
        run_logged "$name" go build -p 2 -trimpath -ldflags "-s -w -X $ldflag" -o "$out.new" "$main_pkg" || exit 1
    ) || return 1
    mv -f "$out.new" "$out"
}

# ---- 1. the CLI / engine ---------------------------------------------------------------
if part_done pulumi "$PULUMI_VERSION" "$BIN/pulumi"; then
    log "pulumi CLI $PULUMI_VERSION already built"
else
    t0=$(date +%s)
    log "building pulumi CLI $PULUMI_VERSION from github.com/pulumi/pulumi/pkg/v3 (takes ~4-5 min on 2 cores, ~1.3 GB of modules on a first run)"
    build_in_wrapper pulumi "$BIN/pulumi" \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
        || die "building the pulumi CLI failed (log: $LOGS/pulumi.log)"
    got=$(PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME=$PHOME "$BIN/pulumi" version 2>/dev/null | head -n1)
    [ "$got" = "$PULUMI_VERSION" ] || die "built pulumi reports '$got', expected $PULUMI_VERSION"
    mark_part pulumi "$PULUMI_VERSION"
    log "pulumi $got built in $(elapsed "$t0")"
fi

# ---- 2. the Node.js language host ------------------------------------------------------
if part_done pulumi-language-nodejs "sdk/v3@$LANGHOST_SDK_VERSION" "$BIN/pulumi-language-nodejs"; then
    log "pulumi-language-nodejs (sdk/v3@$LANGHOST_SDK_VERSION) already built"
else
    t0=$(date +%s)
    log "building pulumi-language-nodejs from github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION (takes ~30 s)"
    build_in_wrapper pulumi-language-nodejs "$BIN/pulumi-language-nodejs" \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_SDK_VERSION" \
        github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
        "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" \
        || die "building pulumi-language-nodejs failed (log: $LOGS/pulumi-language-nodejs.log)"
    mark_part pulumi-language-nodejs "sdk/v3@$LANGHOST_SDK_VERSION"
    log "pulumi-language-nodejs built in $(elapsed "$t0")"
fi

# ---- 3. shims shipped in the npm SDK ---------------------------------------------------
# pulumi-resource-pulumi-nodejs runs dynamic providers: `node <@pulumi/pulumi/cmd/dynamic-provider>`,
# resolved from the program's directory, so the copy serves any project's node_modules.
for shim in "$SDK_PKG"/pulumi-resource-* "$SDK_PKG"/pulumi-analyzer-*; do
    [ -f "$shim" ] || continue
    case $shim in *.cmd|*.ps1) continue ;; esac
    install -m 755 "$shim" "$BIN/$(basename "$shim")"
    log "installed $(basename "$shim") from node_modules/@pulumi/pulumi"
done
[ -x "$BIN/pulumi-resource-pulumi-nodejs" ] \
    || die "$SDK_PKG/pulumi-resource-pulumi-nodejs not found (is node_modules complete? run 'npm ci')"

# ---- stamp -----------------------------------------------------------------------------
expected_stamp >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
log "done: $BIN is ready; '. $REPO/scripts/env.sh' puts it first on PATH"
