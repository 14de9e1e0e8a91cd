#!/usr/bin/env bash
# Prepare the SGLang router, both generations (smg 1.x and sglang-router 0.3.x), for tests and for
# air-gapped gateways.
#
#   bash scripts/setup/router.sh           # idempotent; a rerun is a fast no-op
#   bash scripts/setup/router.sh --force   # rebuild everything
#
# Everything lands OUTSIDE the repo, under
#   CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
#
#   $CACHE/wheels/files/          smg==1.13.0 and sglang-router==0.3.2 + all dependencies, as wheels for
#                                 CPython 3.11 and 3.13 / manylinux x86_64 (glibc <= 2.36): 3.11 for
#                                 the host and Debian bookworm's python3, 3.13 for Debian trixie's
#   $CACHE/wheels/simple/         PEP 503 index over those files. Serve $CACHE/wheels with any
#                                 static file server and point pip (router.indexUrl) at /simple:
#                                   python3 -m http.server --bind 127.0.0.1 --directory $CACHE/wheels 8000
#                                   pip install --index-url http://127.0.0.1:8000/simple sglang-router==0.3.2
#   $CACHE/routers/<pkg>-<ver>/   one host venv per router, installed from the local index only:
#                                   $CACHE/routers/smg-1.13.0/bin/python -m smg.launch_router --help
#                                   $CACHE/routers/sglang-router-0.3.2/bin/python -m sglang_router.launch_router --help
#   $CACHE/routers.stamp          written last; its presence makes a rerun a no-op
#
# Environment:
#   SGLANG_GATEWAY_CACHE          cache root (default ~/.cache/sglang-gateway)
#   SGLANG_GATEWAY_PYTHON         python 3.11 used for the host venv (default: python3)
#   SGLANG_GATEWAY_VERIFY_PYTHON  python 3.11 used for the HTTP-index check (default: /usr/bin/python3
#                                 when it is 3.11 — Debian's own pip, as in the sandbox containers —
#                                 else the same as SGLANG_GATEWAY_PYTHON)
#   SGLANG_GATEWAY_VERIFY_PYTHON313  python 3.13 for the same check of the cp313 wheels (default:
#                                 python3.13 on PATH, else ~/.pyenv's 3.13.0; none: check skipped, warned)
#   SGLANG_GATEWAY_MAX_GLIBC      newest manylinux glibc accepted for wheels (default 2.36 = bookworm)
set -euo pipefail

# package version import-name: every router generation the library installs on gateways.
ROUTERS=("smg 1.13.0 smg" "sglang-router 0.3.2 sglang_router")
PY_TAG=311                       # CPython 3.11: host pyenv 3.11 and Debian bookworm python3 3.11
# Every CPython the index serves; a gateway's pip picks its own tag from the same index.
INDEX_PY_TAGS=(311 313)          # 3.13: Debian trixie's python3 (the gateway-release e2e test)
MAX_GLIBC=${SGLANG_GATEWAY_MAX_GLIBC:-2.36}

# The full dependency closure of each router, pinned so the host venvs and every gateway get the
# same bits: the library ships the same files to gateways (pip -c). Refresh: `pip download
# <pkg>==X -d /tmp/x`, copy the versions into templates/routers/<pkg>-X.constraints.txt, run with --force.
CONSTRAINTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../templates/routers" && pwd)"
constraints_of() { cat "$CONSTRAINTS_DIR/$1-$2.constraints.txt"; }
ALL_CONSTRAINTS=$(for r in "${ROUTERS[@]}"; do read -r pkg ver _ <<<"$r"; constraints_of "$pkg" "$ver"; done)

CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
WHEELS=$CACHE/wheels
FILES=$WHEELS/files
SIMPLE=$WHEELS/simple
VENVS=$CACHE/routers
STAMP=$CACHE/routers.stamp
PYTHON=${SGLANG_GATEWAY_PYTHON:-python3}

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "router.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

T0=$(date +%s)
log() { printf '[router.sh +%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '[router.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# The stamp records what was built; each venv must still hold its router.
stamp_key="${ROUTERS[*]} venv cp$PY_TAG index $(printf 'cp%s,' "${INDEX_PY_TAGS[@]}")glibc<=$MAX_GLIBC $(printf '%s' "$ALL_CONSTRAINTS" | sha256sum | cut -c1-16)"
is_done() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$stamp_key" ]] && [[ -f "$SIMPLE/index.html" ]] || return 1
  local r pkg ver
  for r in "${ROUTERS[@]}"; do
    read -r pkg ver _ <<<"$r"
    [[ -x "$VENVS/$pkg-$ver/bin/python" ]] \
      && compgen -G "$VENVS/$pkg-$ver/lib/python3.11/site-packages/${pkg//-/_}-$ver.dist-info" >/dev/null || return 1
  done
}

if [[ $FORCE == 0 ]] && is_done; then
  log "up to date: ${ROUTERS[*]} in $VENVS (index $SIMPLE); --force rebuilds"
  exit 0
fi

mkdir -p "$CACHE"
# Serialize concurrent runs (parallel test jobs); re-check once we hold the lock.
exec 9>"$CACHE/.router.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [[ $FORCE == 0 ]] && is_done; then log "up to date (built by a concurrent run)"; exit 0; fi
fi
rm -f "$STAMP"

# Host/interpreter checks -------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "python not found: $PYTHON (set SGLANG_GATEWAY_PYTHON)"
pyver=$("$PYTHON" -c 'import sys; print("%d%d" % sys.version_info[:2])')
[[ "$pyver" == "$PY_TAG" ]] || die "$PYTHON is Python ${pyver:0:1}.${pyver:1}; the wheels are for CPython 3.11 (set SGLANG_GATEWAY_PYTHON to a python3.11)"
[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] || die "host is $(uname -s)/$(uname -m); the host venv needs Linux x86_64"

VERIFY_PYTHON=${SGLANG_GATEWAY_VERIFY_PYTHON:-}
if [[ -z "$VERIFY_PYTHON" ]]; then
  if [[ -x /usr/bin/python3 ]] && [[ "$(/usr/bin/python3 -c 'import sys; print("%d%d" % sys.version_info[:2])' 2>/dev/null)" == "$PY_TAG" ]] \
     && /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    VERIFY_PYTHON=/usr/bin/python3
  else
    VERIFY_PYTHON=$PYTHON
  fi
fi

py_minor() { "$1" -c 'import sys; print("%d%d" % sys.version_info[:2])' 2>/dev/null; }
# The first candidate that really is 3.13 (a pyenv shim on PATH may point at another version).
VERIFY_PYTHON313=
for cand in ${SGLANG_GATEWAY_VERIFY_PYTHON313:-python3.13 "$HOME/.pyenv/versions/3.13.0/bin/python3.13"}; do
  if [[ "$(py_minor "$cand")" == 313 ]]; then VERIFY_PYTHON313=$cand; break; fi
done
[[ -n $VERIFY_PYTHON313 || -z ${SGLANG_GATEWAY_VERIFY_PYTHON313:-} ]] ||
  die "SGLANG_GATEWAY_VERIFY_PYTHON313=$SGLANG_GATEWAY_VERIFY_PYTHON313 is not a Python 3.13"

# pip must see only what we give it: no user/site config, no inherited index settings.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV PIP_USER || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sglang-gateway-router.XXXXXX")
HTTP_PID=
cleanup() {
  if [[ -n "$HTTP_PID" ]]; then kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
printf '%s\n' "$ALL_CONSTRAINTS" | sed '/^$/d' | sort -u > "$WORK/constraints.txt"
# One index serves both closures: a project pinned at two versions would make it ambiguous.
conflicts=$(sed 's/==.*//' "$WORK/constraints.txt" | sort | uniq -d)
[[ -z "$conflicts" ]] || die "the routers' closures pin these at different versions: $conflicts"

# 1. Download wheels ----------------------------------------------------------------------
# Target platform spelled out (pip does not expand manylinux_2_X by itself): every glibc
# from MAX_GLIBC down to 2.5 plus the legacy aliases, newest first, as a native pip would.
platform_args=()
max_minor=${MAX_GLIBC#2.}
for ((m = max_minor; m >= 5; m--)); do platform_args+=(--platform "manylinux_2_${m}_x86_64"); done
platform_args+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

mkdir -p "$FILES"
for tag in "${INDEX_PY_TAGS[@]}"; do
  for r in "${ROUTERS[@]}"; do
    read -r pkg ver _ <<<"$r"
    log "downloading $pkg==$ver + dependencies (cp$tag, manylinux glibc<=$MAX_GLIBC) into $FILES"
    "$PYTHON" -m pip download --quiet --dest "$FILES" --only-binary=:all: \
      --implementation cp --python-version "${tag:0:1}.${tag:1}" --abi "cp$tag" --abi abi3 --abi none \
      "${platform_args[@]}" \
      -c "$WORK/constraints.txt" "$pkg==$ver" \
      || die "pip download of $pkg==$ver for cp$tag failed (is PyPI reachable?)"
  done
done
nfiles=$(find "$FILES" -maxdepth 1 -name '*.whl' | wc -l)
log "  $nfiles wheels, $(du -sh "$FILES" | cut -f1) in $FILES"

# 2. PEP 503 simple index -------------------------------------------------------------------
log "writing PEP 503 index $SIMPLE"
"$PYTHON" - "$FILES" "$SIMPLE" "$WORK/constraints.txt" <<'PY'
import hashlib, html, os, re, shutil, sys, zipfile, email.parser

files_dir, simple_dir, constraints = sys.argv[1:4]
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
wanted = {}
for line in open(constraints):
    line = line.strip()
    if line and not line.startswith("#"):
        name, ver = line.split("==")
        wanted[norm(name)] = ver

projects = {}
for fn in sorted(os.listdir(files_dir)):
    if not fn.endswith(".whl"):
        continue
    parts = fn[:-4].split("-")
    if len(parts) not in (5, 6):
        sys.exit(f"not a wheel file name: {fn}")
    name, ver = norm(parts[0]), parts[1]
    # A stale file of another version (older run, changed pins) stays on disk but is not indexed.
    if wanted.get(name) != ver:
        print(f"  (not indexed, not pinned: {fn})")
        continue
    path = os.path.join(files_dir, fn)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with zipfile.ZipFile(path) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode("utf-8", "replace"), headersonly=True)
    projects.setdefault(name, []).append((fn, digest, meta.get("Requires-Python")))

missing = sorted(set(wanted) - set(projects))
if missing:
    sys.exit(f"pinned but no wheel downloaded: {missing}")

tmp = simple_dir + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
head = '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0"><title>{}</title></head><body>\n'
with open(os.path.join(tmp, "index.html"), "w") as out:
    out.write(head.format("Simple index"))
    for name in sorted(projects):
        out.write(f'<a href="{name}/">{name}</a><br>\n')
    out.write("</body></html>\n")
for name, entries in projects.items():
    os.makedirs(os.path.join(tmp, name))
    with open(os.path.join(tmp, name, "index.html"), "w") as out:
        out.write(head.format(f"Links for {name}"))
        for fn, digest, rp in entries:
            attr = f' data-requires-python="{html.escape(rp, quote=True)}"' if rp else ""
            # relative to /simple/<name>/ -> /files/<fn>: works over http:// and file:// alike
            out.write(f'<a href="../../files/{fn}#sha256={digest}"{attr}>{fn}</a><br>\n')
        out.write("</body></html>\n")
shutil.rmtree(simple_dir, ignore_errors=True)
os.rename(tmp, simple_dir)
print(f"  {len(projects)} projects indexed")
PY
# checksums next to the files, handy for auditing what a gateway received
(cd "$FILES" && sha256sum -- *.whl > "$WHEELS/SHA256SUMS")

# 3. Host venvs, from the local index only -------------------------------------------------------
for r in "${ROUTERS[@]}"; do
  read -r pkg ver import <<<"$r"
  venv=$VENVS/$pkg-$ver
  log "creating host venv $venv (index file://$SIMPLE only)"
  rm -rf "$venv"
  mkdir -p "$VENVS"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --index-url "file://$SIMPLE" --only-binary=:all: \
    "$pkg==$ver" || die "installing $pkg==$ver from file://$SIMPLE failed"
  "$venv/bin/python" - "$pkg" "$ver" "$import" <<'PY' || die "router venv check failed for $pkg"
import importlib, importlib.metadata as md, sys
pkg, want, module = sys.argv[1:4]
v = md.version(pkg)
assert v == want, f"{pkg} {v} != {want}"
importlib.import_module(module + ".launch_router")  # loads the Rust extension
print(f"  {pkg} {v} importable")
PY
  "$venv/bin/python" -m "$import.launch_router" --help >/dev/null 2>&1 || die "$import.launch_router --help failed in $venv"
done

# 4. Prove the air-gapped path: pip over HTTP against a plain static server ---------------------------
log "verifying pip install over HTTP (http.server on 127.0.0.1, $("$VERIFY_PYTHON" -m pip --version | cut -d' ' -f1-2) of $VERIFY_PYTHON)"
"$PYTHON" -u -m http.server --bind 127.0.0.1 --directory "$WHEELS" 0 >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
port=
for _ in $(seq 1 100); do   # http.server prints "Serving HTTP on 127.0.0.1 port N ..."
  port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$WORK/http.log" | head -n1)
  [[ -n "$port" ]] && break
  kill -0 "$HTTP_PID" 2>/dev/null || die "http.server exited: $(cat "$WORK/http.log")"
  sleep 0.1
done
[[ -n "$port" ]] || die "http.server did not report its port within 10s"
verify_pythons=("$VERIFY_PYTHON")
if [[ -n $VERIFY_PYTHON313 ]]; then
  verify_pythons+=("$VERIFY_PYTHON313")
else
  log "  warning: no python3.13 here (SGLANG_GATEWAY_VERIFY_PYTHON313): the cp313 wheels are not install-checked"
fi
for vpy in "${verify_pythons[@]}"; do
  tag=$(py_minor "$vpy")
  for r in "${ROUTERS[@]}"; do
    read -r pkg ver import <<<"$r"
    "$vpy" -m venv "$WORK/verify-$tag-$pkg"
    "$WORK/verify-$tag-$pkg/bin/python" -m pip install --quiet --only-binary=:all: --index-url "http://127.0.0.1:$port/simple" \
      "$pkg==$ver" || die "pip install of $pkg==$ver on Python $tag ($vpy) via http://127.0.0.1:$port/simple failed"
    "$WORK/verify-$tag-$pkg/bin/python" -c "import importlib.metadata as m, sys, $import.launch_router; print('  http index ok on Python %d.%d: $pkg' % sys.version_info[:2], m.version('$pkg'))" \
      || die "$pkg not importable on Python $tag after the HTTP install"
  done
done
served=$(grep -c '"GET /' "$WORK/http.log" || true)
kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true; HTTP_PID=
log "  http.server answered $served GETs; stopped"

printf '%s' "$stamp_key" > "$STAMP"
log "done: ${ROUTERS[*]} in $VENVS ; index $SIMPLE"
