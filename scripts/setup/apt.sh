#!/usr/bin/env bash
# Installs, from the configured Debian mirror, the host-side tools the test
# sandbox and the config tests need. Idempotent: does nothing (not even
# `apt-get update`) when everything is already installed.
#
#   nginx             - only the binary, for `nginx -t` on rendered configs.
#                       In bookworm `nginx` is the real package (auth_request,
#                       ssl, limit_req, map, upstream keepalive are built in);
#                       nginx-light/nginx-core are transitional packages that
#                       pull `nginx` plus extra dynamic modules we don't need.
#   debootstrap       - builds the cached container rootfs (scripts/setup/rootfs.sh)
#   systemd-container - systemd-nspawn
#   iproute2          - ip netns / veth / bridge
#   openssh-client    - ssh, ssh-keygen
#   curl, python3     - health checks, the wheel file server
#   python3-venv, -pip - scripts/setup/router.sh downloads wheels and builds the router venv
#   openssl           - the tests make self-signed certificates
#   libnginx-mod-http-js - nginx's njs module: the model endpoint's tests run its script under real nginx
#
# The host nginx *service* is never left running or enabled: we only need the
# binary. A temporary policy-rc.d stops dpkg from starting it at all.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "apt.sh: must run as root" >&2
  exit 1
fi

PACKAGES=(nginx libnginx-mod-http-js debootstrap systemd-container iproute2 openssh-client curl openssl python3 python3-venv python3-pip)

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

stop_host_nginx() {
  # Disable at boot (both init systems' records), then stop a running master.
  if command -v update-rc.d >/dev/null 2>&1 && [[ -e /etc/init.d/nginx ]]; then
    update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable nginx >/dev/null 2>&1 || true
  fi
  local pid=""
  [[ -s /run/nginx.pid ]] && pid=$(cat /run/nginx.pid 2>/dev/null || true)
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && \
     [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == nginx ]]; then
    if [[ -d /run/systemd/system ]]; then
      systemctl stop nginx || kill -QUIT "$pid" || true
    else
      service nginx stop >/dev/null 2>&1 || kill -QUIT "$pid" 2>/dev/null || true
    fi
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    echo "apt.sh: stopped the host nginx service (pid $pid)"
  fi
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "apt.sh: all present: ${PACKAGES[*]}"
else
  echo "apt.sh: installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep dpkg from starting services (nginx) during the install.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  cleanup() { [[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d; true; }
  trap cleanup EXIT
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  apt-get "${apt_opts[@]}" update -qq
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  cleanup; trap - EXIT
fi

# Whether or not we installed it now, the host must not run nginx as a service.
if installed nginx; then
  stop_host_nginx
fi

# Verify what the tests rely on.
fail=0
for bin in nginx debootstrap systemd-nspawn ip ssh ssh-keygen curl python3; do
  if ! command -v "$bin" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$bin ]]; then
    echo "apt.sh: missing binary after install: $bin" >&2
    fail=1
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! "$NGINX" -V 2>&1 | grep -q -- '--with-http_auth_request_module'; then
  echo "apt.sh: $NGINX lacks the auth_request module" >&2
  fail=1
fi
if ! "$NGINX" -V 2>&1 | grep -q -- '--with-http_ssl_module'; then
  echo "apt.sh: $NGINX lacks the ssl module" >&2
  fail=1
fi
exit $fail
