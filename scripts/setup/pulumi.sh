#!/usr/bin/env bash
# Make the real Pulumi CLI usable on a machine that reaches package registries only.
#
#   bash scripts/setup/pulumi.sh           # idempotent; a rerun is a fast no-op (< 1 s)
#   bash scripts/setup/pulumi.sh --force   # rebuild everything
#   source scripts/env.sh                  # then: pulumi version  ->  v3.248.0
#
# The official installer and plugin downloads cannot be reached, so the engine and its
# plugins are built from Go modules (Go module proxy) once, OUTSIDE the repo, under
#   CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
#
#   $CACHE/pulumi/bin/pulumi                         the CLI/engine v3.248.0 (matches @pulumi/pulumi 3.248.0)
#   $CACHE/pulumi/bin/pulumi-language-nodejs         Node.js language host (see LANGUAGE HOST below)
#   $CACHE/pulumi/bin/pulumi-resource-pulumi-nodejs  dynamic-provider shim, copied from node_modules/@pulumi/pulumi
#   $CACHE/pulumi/bin/pulumi-resource-command        @pulumi/command's provider 1.2.1 (see COMMAND PROVIDER below)
#   $CACHE/pulumi/home/                              PULUMI_HOME (set by scripts/env.sh)
#   $CACHE/pulumi/go/                                GOPATH, module cache and build cache (reused on rebuilds)
#   $CACHE/pulumi/logs/                              full go output of the last build of each part
#   $CACHE/pulumi/parts/                             one record per built binary (a rerun rebuilds only what is missing)
#   $CACHE/pulumi/stamp                              written last, names the versions; its presence is the no-op check
#
# The plugins are "ambient": the engine finds them on $PATH (scripts/env.sh puts
# $CACHE/pulumi/bin first), so nothing is installed into PULUMI_HOME's plugin cache.
#
# LANGUAGE HOST. The v3.248.0 host is its own untagged module
# (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3); the Go module proxy
# reachable here does not serve it at any version (403 "This module version is not available"
# for @v/list, for the pseudo-versions of the v3.248.0 and pkg/v3.248.0 commits, and for
# commit hashes). The newest host that ships INSIDE a served module is the package
# github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs in sdk/v3 v3.68.0 (it moved
# into its own module in v3.69.0), so that is what gets built. It drives the 3.248.0 engine
# and the 3.248.0 Node SDK fine (up/preview/destroy/refresh, config, secrets, dynamic providers),
# with these known limits of an old host:
#   - Pulumi.yaml runtime options (typescript, tsconfig, nodeargs, packagemanager) are NOT read:
#     the new engine passes them in a field the old host does not know. The host always runs
#     with typescript=true (ts-node from the program's node_modules), which is what we want.
#   - pulumi.runtime.getRootDirectory() is "" (the old host passes no --root-directory).
#   - Resource-monitor RPCs newer than mid-2023 (registerResourceTransform/invoke transforms,
#     resource hooks, parameterized packages) are answered "unimplemented" by its monitor proxy.
#
# COMMAND PROVIDER. github.com/pulumi/pulumi-command/provider is not served by the Go module
# proxy reachable here (403 for @v/list and for every version form of commit 7f3eb6f3, i.e.
# v1.2.1); every one of its dependencies IS served. The script still tries the proxy (a fast
# failure) and, if SGLANG_GATEWAY_PULUMI_COMMAND_SRC names a local checkout of pulumi-command
# at v1.2.1 (the repo root or its provider/ dir), builds from that instead. Without either, the
# provider is reported missing (warning, exit 0), the stamp records that, and any program that
# registers a @pulumi/command resource fails with
#   "no resource plugin 'pulumi-resource-command' found in the workspace at version v1.2.1 or on your $PATH".
# Set SGLANG_GATEWAY_PULUMI_REQUIRE_COMMAND=1 to make that a hard error instead.
#
# Environment:
#   SGLANG_GATEWAY_CACHE                  cache root (default ~/.cache/sglang-gateway)
#   SGLANG_GATEWAY_PULUMI_COMMAND_SRC     local pulumi-command source tree at v1.2.1 (optional, see above)
#   SGLANG_GATEWAY_PULUMI_REQUIRE_COMMAND 1 = fail when the command provider cannot be built
#   SGLANG_GATEWAY_PULUMI_USE_SYSTEM      0 = ignore a usable pulumi already on PATH (default 1)
#   GOPROXY / GOSUMDB / GOTOOLCHAIN       honoured as set; GOPATH, GOMODCACHE, GOCACHE, GOFLAGS are set here
set -euo pipefail

PULUMI_VERSION=v3.248.0                 # must equal the @pulumi/pulumi pin in package.json
LANGHOST_SDK_VERSION=v3.68.0            # newest sdk/v3 that still contains the Node.js host package
COMMAND_VERSION=1.2.1                   # must equal the @pulumi/command pin in package.json
COMMAND_COMMIT=7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25   # pulumi-command tag v1.2.1
# pkg/go.mod's own non-relative replace; a wrapper module has to repeat it to build what upstream builds.
CLIPBOARD_REPLACE=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
PC=$CACHE/pulumi
BIN=$PC/bin
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

# The stamp names every version that went into $BIN. The command line records whether the
# command provider is there ("1.2.1") or was unavailable ("unavailable").
expected_stamp() {
    printf 'pulumi=%s\n' "$PULUMI_VERSION"
    printf 'pulumi-language-nodejs=sdk/v3@%s\n' "$LANGHOST_SDK_VERSION"
    printf 'pulumi-resource-pulumi-nodejs=@pulumi/pulumi@%s\n' "${PULUMI_VERSION#v}"
    printf 'pulumi-resource-command=%s\n' "$1"
}

stamp_ok() {
    [ -f "$STAMP" ] || return 1
    local have
    have=$(cat "$STAMP")
    [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-nodejs" ] && [ -x "$BIN/pulumi-resource-pulumi-nodejs" ] || return 1
    if [ "$have" = "$(expected_stamp "$COMMAND_VERSION")" ]; then
        [ -x "$BIN/pulumi-resource-command" ]
        return
    fi
    # Recorded as unavailable: only try again when there is something new to try.
    [ "$have" = "$(expected_stamp unavailable)" ] && [ -z "${SGLANG_GATEWAY_PULUMI_COMMAND_SRC:-}" ] \
        && [ "${SGLANG_GATEWAY_PULUMI_REQUIRE_COMMAND:-0}" != 1 ]
}

# A pulumi on PATH that is not ours counts when it is v3 >= 3.248.0 and the language host,
# the dynamic-provider shim and the command provider are found beside it or on PATH.
system_pulumi_usable() {
    [ "${SGLANG_GATEWAY_PULUMI_USE_SYSTEM:-1}" = 1 ] || return 1
    local p dir v minor
    p=$(command -v pulumi 2>/dev/null) || return 1
    dir=$(dirname "$(readlink -f "$p")")
    [ "$dir" != "$(readlink -f "$BIN" 2>/dev/null || echo "$BIN")" ] || return 1
    v=$(PULUMI_SKIP_UPDATE_CHECK=true timeout 30 "$p" version 2>/dev/null | head -n1) || return 1
    [[ $v =~ ^v3\.([0-9]+)\.[0-9]+$ ]] || return 1
    minor=${BASH_REMATCH[1]}
    [ "$minor" -ge 248 ] || return 1
    local plugin
    for plugin in pulumi-language-nodejs pulumi-resource-pulumi-nodejs pulumi-resource-command; do
        [ -x "$dir/$plugin" ] || command -v "$plugin" >/dev/null 2>&1 || return 1
    done
    log "using pulumi $v already on PATH ($p); nothing to build"
}

# ---- fast path -------------------------------------------------------------------------
if [ "$FORCE" = 0 ]; then
    if stamp_ok; then
        origin=$(cat "$PC/parts/pulumi-resource-command.origin" 2>/dev/null || true)
        log "pulumi $PULUMI_VERSION already built in $BIN ($(grep '^pulumi-resource-command=' "$STAMP")${origin:+, from $origin})"
        exit 0
    fi
    if system_pulumi_usable; then
        exit 0
    fi
fi

# ---- preconditions ---------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build Pulumi from Go modules)"
SDK_PKG=$REPO/node_modules/@pulumi/pulumi
[ -f "$SDK_PKG/package.json" ] || die "$SDK_PKG is missing: run 'npm ci' in $REPO first"
sdk_version=$(node -p "require('$SDK_PKG/package.json').version" 2>/dev/null || true)
[ "$sdk_version" = "${PULUMI_VERSION#v}" ] \
    || log "warning: node_modules has @pulumi/pulumi $sdk_version, this script builds the engine $PULUMI_VERSION"

mkdir -p "$BIN" "$LOGS" "$PC/home" "$PC/go"

# One build at a time (a test runner and a developer may start this together).
exec 9>"$PC/.lock"
if ! flock -n 9; then
    log "another pulumi setup is running; waiting for it"
    flock 9
fi
if [ "$FORCE" = 0 ] && stamp_ok; then
    log "pulumi $PULUMI_VERSION was built by the other run"
    exit 0
fi
rm -f "$STAMP"

export GOPATH=$PC/go
export GOMODCACHE=$PC/go/mod
export GOCACHE=$PC/go/build-cache
# -mod=mod: wrapper modules have no go.sum until `go get` writes it;
# -modcacherw: keep the module cache deletable with a plain rm -rf.
export GOFLAGS="-mod=mod -modcacherw -buildvcs=false"
export CGO_ENABLED=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pulumi-setup.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# run_logged NAME CMD...: full output to $LOGS/NAME.log, its tail on failure.
run_logged() {
    local name=$1; shift
    if ! "$@" >>"$LOGS/$name.log" 2>&1; then
        echo "---- last lines of $LOGS/$name.log ----" >&2
        tail -n 25 "$LOGS/$name.log" >&2
        return 1
    fi
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# build_in_wrapper NAME VERSION_LDFLAG MAIN_PKG MODULE@VERSION...: a throwaway module that
# requires the given modules and builds MAIN_PKG from the module cache. This sidesteps the
# relative `replace ... => ../sdk` lines in Pulumi's own go.mod files, which make
# `go install pkg@version` refuse to build.
build_in_wrapper() {
    local name=$1 ldflag=$2 main_pkg=$3; shift 3
    local dir=$TMP/$name
    mkdir -p "$dir"
    : >"$LOGS/$name.log"
    (
        cd "$dir" || exit 1
        printf 'module sglang-gateway.local/pulumi-build/%s\n\ngo 1.21\n' "$name" >go.mod
        if [ "$name" = pulumi ]; then go mod edit -replace "$CLIPBOARD_REPLACE" || exit 1; fi
        run_logged "$name" go get "$@" || exit 1
        run_logged "$name" go build -p 2 -trimpath -ldflags "-s -w -X $ldflag" -o "$BIN/.$name.new" "$main_pkg" || exit 1
    ) || return 1
    mv -f "$BIN/.$name.new" "$BIN/$name"
}

# Per-part records, so that a rerun after a partial failure (or to retry the command
# provider) rebuilds only what is missing. --force ignores them.
part_done() { [ "$FORCE" = 0 ] && [ -x "$BIN/$1" ] && [ "$(cat "$PC/parts/$1" 2>/dev/null)" = "$2" ]; }
mark_part() { mkdir -p "$PC/parts"; printf '%s\n' "$2" >"$PC/parts/$1"; }

# ---- 1. the CLI / engine ---------------------------------------------------------------
if part_done pulumi "$PULUMI_VERSION"; then
    log "pulumi CLI $PULUMI_VERSION already built"
else
    t0=$(date +%s)
    log "building pulumi CLI $PULUMI_VERSION from github.com/pulumi/pulumi/pkg/v3 (takes ~4-5 min on 2 cores, ~1 GB of modules on a first run)"
    build_in_wrapper pulumi \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
        || die "building the pulumi CLI failed (log: $LOGS/pulumi.log)"
    got=$(PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME=$PC/home "$BIN/pulumi" version 2>/dev/null | head -n1)
    [ "$got" = "$PULUMI_VERSION" ] || die "built pulumi reports '$got', expected $PULUMI_VERSION"
    mark_part pulumi "$PULUMI_VERSION"
    log "pulumi $got built in $(elapsed "$t0")"
fi

# ---- 2. the Node.js language host ------------------------------------------------------
if part_done pulumi-language-nodejs "sdk/v3@$LANGHOST_SDK_VERSION"; then
    log "pulumi-language-nodejs (sdk/v3@$LANGHOST_SDK_VERSION) already built"
else
    t0=$(date +%s)
    log "building pulumi-language-nodejs from github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION (takes ~1 min)"
    build_in_wrapper pulumi-language-nodejs \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_SDK_VERSION" \
        github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
        "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" \
        || die "building pulumi-language-nodejs failed (log: $LOGS/pulumi-language-nodejs.log)"
    mark_part pulumi-language-nodejs "sdk/v3@$LANGHOST_SDK_VERSION"
    log "pulumi-language-nodejs built in $(elapsed "$t0")"
fi

# ---- 3. shims shipped in the npm SDK ---------------------------------------------------
# pulumi-resource-pulumi-nodejs runs dynamic providers: `node <@pulumi/pulumi/cmd/dynamic-provider>`,
# resolved from the program's directory, so the copy stays valid for any project's node_modules.
for shim in "$SDK_PKG"/pulumi-resource-* "$SDK_PKG"/pulumi-analyzer-*; do
    [ -f "$shim" ] || continue
    case $shim in *.cmd|*.ps1) continue ;; esac
    install -m 755 "$shim" "$BIN/$(basename "$shim")"
    log "installed $(basename "$shim") from node_modules/@pulumi/pulumi"
done
[ -x "$BIN/pulumi-resource-pulumi-nodejs" ] \
    || die "$SDK_PKG/pulumi-resource-pulumi-nodejs not found (is node_modules complete? run 'npm ci')"

# ---- 4. the command provider -----------------------------------------------------------
command_state=unavailable
command_origin="Go module proxy"
cmd_ldflags="-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION"
src=${SGLANG_GATEWAY_PULUMI_COMMAND_SRC:-}
if part_done pulumi-resource-command "$COMMAND_VERSION"; then
    log "pulumi-resource-command $COMMAND_VERSION already built"
    command_state=$COMMAND_VERSION
elif [ -n "$src" ]; then
    t0=$(date +%s)
    : >"$LOGS/pulumi-resource-command.log"
    [ -f "$src/provider/go.mod" ] && src=$src/provider
    [ -f "$src/go.mod" ] && grep -q '^module github.com/pulumi/pulumi-command/provider$' "$src/go.mod" \
        || die "SGLANG_GATEWAY_PULUMI_COMMAND_SRC=$SGLANG_GATEWAY_PULUMI_COMMAND_SRC is not a pulumi-command checkout"
    log "building pulumi-resource-command $COMMAND_VERSION from local source $src (takes ~1-2 min)"
    # Build a copy: the checkout may be read-only, and go would otherwise touch its go.sum.
    cp -r "$src" "$TMP/command-src"
    if (cd "$TMP/command-src" && run_logged pulumi-resource-command \
            go build -p 2 -trimpath -ldflags "$cmd_ldflags" -o "$BIN/.pulumi-resource-command.new" ./cmd/pulumi-resource-command); then
        mv -f "$BIN/.pulumi-resource-command.new" "$BIN/pulumi-resource-command"
        command_state=$COMMAND_VERSION
        command_origin="local source $src"
        log "pulumi-resource-command $COMMAND_VERSION built in $(elapsed "$t0")"
    fi
else
    t0=$(date +%s)
    : >"$LOGS/pulumi-resource-command.log"
    log "building pulumi-resource-command $COMMAND_VERSION via the Go module proxy (takes ~1-2 min when served)"
    if (export GOBIN=$TMP/gobin && run_logged pulumi-resource-command \
            go install -trimpath -ldflags "$cmd_ldflags" \
            "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command@$COMMAND_COMMIT"); then
        mv -f "$TMP/gobin/pulumi-resource-command" "$BIN/pulumi-resource-command"
        command_state=$COMMAND_VERSION
        log "pulumi-resource-command $COMMAND_VERSION built in $(elapsed "$t0")"
    fi
fi
if [ "$command_state" = "$COMMAND_VERSION" ]; then
    if ! part_done pulumi-resource-command "$COMMAND_VERSION"; then
        mark_part pulumi-resource-command "$COMMAND_VERSION"
        # Where it came from: a build from a local checkout exists on this machine only.
        mark_part pulumi-resource-command.origin "$command_origin"
    fi
else
    rm -f "$BIN/pulumi-resource-command" "$PC/parts/pulumi-resource-command" "$PC/parts/pulumi-resource-command.origin"
    msg="pulumi-resource-command $COMMAND_VERSION could not be built: the Go module proxy does not serve
    github.com/pulumi/pulumi-command/provider (see $LOGS/pulumi-resource-command.log).
    Programs that register @pulumi/command resources will fail with \"no resource plugin
    'pulumi-resource-command' found\". Set SGLANG_GATEWAY_PULUMI_COMMAND_SRC to a local pulumi-command
    v$COMMAND_VERSION checkout to build it from source."
    [ "${SGLANG_GATEWAY_PULUMI_REQUIRE_COMMAND:-0}" = 1 ] && die "$msg"
    log "WARNING: $msg"
fi

# ---- stamp -----------------------------------------------------------------------------
expected_stamp "$command_state" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
log "done: $BIN is ready; 'source $REPO/scripts/env.sh' puts it first on PATH"
