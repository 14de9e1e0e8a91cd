#!/usr/bin/env bash
# What the ACME tests need (test/e2e/acme.test.ts), built once into the cache:
#
#   bash scripts/setup/acme.sh           # idempotent; a rerun is a fast no-op
#   bash scripts/setup/acme.sh --force   # rebuild both parts
#
#   $CACHE/pebble/bin/pebble, pebble-challtestsrv   Let's Encrypt's test ACME server and its DNS test server,
#                                  built from the Go module github.com/letsencrypt/pebble/v2 (Go module proxy)
#   $CACHE/pebble/go/              GOPATH, module and build cache of that build
#   $CACHE/pebble/stamp            written last, names the version
#   $CACHE/wheels/acme/files/      certbot and its pinned closure (templates/acme/certbot-<v>.constraints.txt) as
#                                  wheels for CPython 3.11 and 3.13, manylinux x86_64 (glibc <= 2.36)
#   $CACHE/wheels/acme/simple/     PEP 503 index over them: the sandbox serves $CACHE/wheels, so the gateway host
#                                  installs certbot from http://<bridge>:8764/acme/simple (certificate.acme.indexUrl).
#                                  A directory of its own: the router's index (scripts/setup/router.sh) is untouched.
#   $CACHE/wheels/acme/stamp       written last
#
# Environment: SGLANG_GATEWAY_CACHE (default ~/.cache/sglang-gateway); GOPROXY / GOSUMDB honoured as set.
set -euo pipefail

PEBBLE_MODULE=github.com/letsencrypt/pebble/v2
PEBBLE_VERSION=v2.10.3
CERTBOT_VERSION=5.8.0
PY_TAGS=(311 313)
MAX_GLIBC=2.36

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
PEBBLE=$CACHE/pebble
ACME_WHEELS=$CACHE/wheels/acme
CONSTRAINTS=$REPO/templates/acme/certbot-$CERTBOT_VERSION.constraints.txt

FORCE=0
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "acme.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[acme-setup] %s\n' "$*"; }
die() { printf '[acme-setup] ERROR: %s\n' "$*" >&2; exit 1; }

pebble_stamp="pebble=$PEBBLE_MODULE@$PEBBLE_VERSION"
pebble_done() { [[ $FORCE == 0 && -x $PEBBLE/bin/pebble && -x $PEBBLE/bin/pebble-challtestsrv && "$(cat "$PEBBLE/stamp" 2>/dev/null)" == "$pebble_stamp" ]]; }
wheels_stamp="certbot=$CERTBOT_VERSION cp${PY_TAGS[*]} glibc<=$MAX_GLIBC $(sha256sum "$CONSTRAINTS" | cut -c1-16)"
wheels_done() { [[ $FORCE == 0 && -f $ACME_WHEELS/simple/index.html && "$(cat "$ACME_WHEELS/stamp" 2>/dev/null)" == "$wheels_stamp" ]]; }

if pebble_done && wheels_done; then
    log "up to date: pebble $PEBBLE_VERSION in $PEBBLE/bin, certbot $CERTBOT_VERSION wheels in $ACME_WHEELS"
    exit 0
fi

mkdir -p "$PEBBLE" "$ACME_WHEELS"
# One build at a time (test lanes and a developer may start this together); re-check once we hold the lock.
exec 9>"$PEBBLE/.lock"
flock 9

# ---- 1. Pebble and pebble-challtestsrv --------------------------------------------------------------
if pebble_done; then
    log "pebble $PEBBLE_VERSION already built"
else
    command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build Pebble from Go modules)"
    rm -f "$PEBBLE/stamp"
    started=$SECONDS
    log "building pebble and pebble-challtestsrv from $PEBBLE_MODULE@$PEBBLE_VERSION (~20 s on a first run)"
    # `go install pkg@version` builds the module as published (no replace directives to work around).
    if ! GOPATH=$PEBBLE/go GOMODCACHE=$PEBBLE/go/mod GOCACHE=$PEBBLE/go/build-cache GOBIN=$PEBBLE/bin \
        GOFLAGS="-modcacherw -buildvcs=false" CGO_ENABLED=0 \
        go install -trimpath "$PEBBLE_MODULE/cmd/pebble@$PEBBLE_VERSION" "$PEBBLE_MODULE/cmd/pebble-challtestsrv@$PEBBLE_VERSION" \
        >"$PEBBLE/build.log" 2>&1; then
        tail -n 25 "$PEBBLE/build.log" >&2
        die "building pebble failed (log: $PEBBLE/build.log)"
    fi
    "$PEBBLE/bin/pebble" -version >/dev/null 2>&1 || die "the built pebble does not run"
    printf '%s' "$pebble_stamp" >"$PEBBLE/stamp"
    log "pebble built in $((SECONDS - started)) s"
fi

# ---- 2. certbot's wheels and their index ------------------------------------------------------------
if wheels_done; then
    log "certbot $CERTBOT_VERSION wheels already indexed"
else
    rm -f "$ACME_WHEELS/stamp"
    export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV PIP_USER || true
    platforms=()
    for ((m = ${MAX_GLIBC#2.}; m >= 5; m--)); do platforms+=(--platform "manylinux_2_${m}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    mkdir -p "$ACME_WHEELS/files"
    for tag in "${PY_TAGS[@]}"; do
        log "downloading certbot==$CERTBOT_VERSION + pinned dependencies (cp$tag) into $ACME_WHEELS/files"
        python3 -m pip download --quiet --dest "$ACME_WHEELS/files" --only-binary=:all: \
            --implementation cp --python-version "${tag:0:1}.${tag:1}" --abi "cp$tag" --abi abi3 --abi none "${platforms[@]}" \
            -c "$CONSTRAINTS" "certbot==$CERTBOT_VERSION" || die "pip download of certbot for cp$tag failed (is PyPI reachable?)"
    done
    # PEP 503: one directory per pinned project, links relative to /acme/simple/<name>/ (http:// and file:// alike).
    python3 - "$ACME_WHEELS" "$CONSTRAINTS" <<'PY'
import hashlib, os, re, shutil, sys
root, constraints = sys.argv[1:3]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
wanted = dict(line.strip().split("==") for line in open(constraints) if line.strip() and not line.startswith("#"))
wanted = {norm(k): v for k, v in wanted.items()}
projects = {}
for fn in sorted(os.listdir(os.path.join(root, "files"))):
    parts = fn[:-4].split("-") if fn.endswith(".whl") else []
    if len(parts) in (5, 6) and wanted.get(norm(parts[0])) == parts[1]:
        digest = hashlib.sha256(open(os.path.join(root, "files", fn), "rb").read()).hexdigest()
        projects.setdefault(norm(parts[0]), []).append((fn, digest))
missing = sorted(set(wanted) - set(projects))
if missing:
    sys.exit(f"pinned but no wheel downloaded: {missing}")
tmp = os.path.join(root, "simple.tmp")
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
page = lambda title, links: f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n{links}</body></html>\n"
with open(os.path.join(tmp, "index.html"), "w") as out:
    out.write(page("Simple index", "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))))
for name, entries in projects.items():
    os.makedirs(os.path.join(tmp, name))
    with open(os.path.join(tmp, name, "index.html"), "w") as out:
        out.write(page(f"Links for {name}", "".join(f'<a href="../../files/{fn}#sha256={d}">{fn}</a><br>\n' for fn, d in entries)))
shutil.rmtree(os.path.join(root, "simple"), ignore_errors=True)
os.rename(tmp, os.path.join(root, "simple"))
print(f"[acme-setup]   {len(projects)} projects indexed")
PY
    # The index installs: a fresh venv of this machine's Python 3.11 (bookworm's, as on the sandbox gateway).
    check=$(mktemp -d)
    trap 'rm -rf "$check"' EXIT
    python3 -m venv "$check/venv"
    "$check/venv/bin/pip" install --quiet --only-binary=:all: --index-url "file://$ACME_WHEELS/simple" -c "$CONSTRAINTS" "certbot==$CERTBOT_VERSION" \
        || die "installing certbot from file://$ACME_WHEELS/simple failed"
    "$check/venv/bin/certbot" --version >/dev/null 2>&1 || die "certbot from the index does not run"
    printf '%s' "$wheels_stamp" >"$ACME_WHEELS/stamp"
    log "certbot $CERTBOT_VERSION indexed in $ACME_WHEELS/simple"
fi
