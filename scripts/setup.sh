#!/usr/bin/env bash
# One idempotent setup for a fresh machine: npm packages, Debian tools (nginx, debootstrap,
# systemd-nspawn), the Pulumi engine built from Go modules, the sglang-router wheels, Pebble (the
# ACME test server, from Go modules) and certbot's wheels, and the
# sandbox rootfs (bookworm; trixie for a gateway on a second Debian release). Everything heavy
# is cached outside the repo in $SGLANG_GATEWAY_CACHE (default ~/.cache/sglang-gateway); a
# second run with a full cache takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export SGLANG_GATEWAY_CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
mkdir -p "$SGLANG_GATEWAY_CACHE"

started=$SECONDS
step() { printf '==> %s\n' "$*"; }

# npm ci only when the lock file changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.sglang-gateway-lock || "$(cat node_modules/.sglang-gateway-lock)" != "$lock_hash" ]]; then
    step "npm ci (pinned by package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > node_modules/.sglang-gateway-lock
fi

step "Debian tools: nginx, debootstrap, systemd-container"
bash scripts/setup/apt.sh
step "Pulumi engine and Node.js language host (built from Go modules)"
bash scripts/setup/pulumi.sh
step "sglang-router wheels and local index"
bash scripts/setup/router.sh
step "ACME test server (Pebble, built from Go modules) and certbot's wheels for the sandbox"
bash scripts/setup/acme.sh
step "fake SGLang worker for the sandbox hosts"
bash test/fixtures/build-fake-worker.sh "$SGLANG_GATEWAY_CACHE/fixtures" >/dev/null
step "sandbox rootfs: bookworm for every host, trixie for the gateway-release test"
bash scripts/setup/rootfs.sh bookworm
bash scripts/setup/rootfs.sh trixie
step "setup done in $((SECONDS - started)) s"
