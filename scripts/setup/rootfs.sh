#!/usr/bin/env bash
# Builds (once) the cached Debian root filesystem of one release that the
# sandbox hosts (scripts/sandbox.sh) boot with systemd-nspawn:
#
#   bash scripts/setup/rootfs.sh [bookworm|trixie]     (default bookworm)
#   -> ${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}/rootfs/<release>
#
# bookworm (Python 3.11) is what every host runs by default; trixie (Python
# 3.13) shows the gateway setup on a second release's Python.
#
# Idempotent: if the tree exists and its stamp (etc/sgw-rootfs.stamp) matches
# this script's recipe, nothing happens. Otherwise it is built with debootstrap
# into a temporary directory next to it and renamed into place only when
# complete, so an interrupted build is never mistaken for a good one.
#
# Environment:
#   SGLANG_GATEWAY_CACHE   cache root (default $HOME/.cache/sglang-gateway)
#   SGLANG_GATEWAY_MIRROR  Debian mirror (default: the one apt is configured with)
#   SGLANG_GATEWAY_REBUILD_ROOTFS=1  rebuild even if the stamp matches
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "rootfs.sh: must run as root" >&2
  exit 1
fi

SUITE=${1:-bookworm}
case $SUITE in
  bookworm|trixie) ;;
  *) echo "rootfs.sh: unknown release '$SUITE' (bookworm or trixie)" >&2; exit 2 ;;
esac
CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
ROOT_PARENT=$CACHE/rootfs
TARGET=$ROOT_PARENT/$SUITE
STAMP_REL=etc/sgw-rootfs.stamp

# `nginx` (not nginx-light): in bookworm nginx-light is a transitional package
# that pulls `nginx` plus the echo module, and trixie has no nginx-light at all;
# `nginx` itself has auth_request, ssl, realip, limit_req, map and upstream
# keepalive built in in both. The same names exist in bookworm and trixie.
INCLUDE=(
  systemd systemd-sysv dbus libpam-systemd
  openssh-server openssh-client
  nginx
  python3 python3-venv python3-pip
  ca-certificates curl iproute2 iputils-ping netcat-openbsd procps psmisc
  sudo less
)
# Bump when the configuration applied below changes, to force a rebuild.
RECIPE_VERSION=1
RECIPE="suite=$SUITE version=$RECIPE_VERSION include=$(IFS=,; echo "${INCLUDE[*]}")"

stamp_ok() {
  [[ -f $TARGET/$STAMP_REL ]] && [[ "$(head -n1 "$TARGET/$STAMP_REL")" == "$RECIPE" ]]
}

if [[ ${SGLANG_GATEWAY_REBUILD_ROOTFS:-0} != 1 ]] && stamp_ok; then
  echo "rootfs.sh: cached rootfs is up to date: $TARGET"
  exit 0
fi

for bin in debootstrap systemd-nspawn; do
  command -v "$bin" >/dev/null 2>&1 || {
    echo "rootfs.sh: $bin not found; run scripts/setup/apt.sh first" >&2
    exit 1
  }
done

mkdir -p "$ROOT_PARENT" "$CACHE/debootstrap-debs"

# Serialize concurrent builds.
exec 9>"$ROOT_PARENT/.lock"
flock 9
if [[ ${SGLANG_GATEWAY_REBUILD_ROOTFS:-0} != 1 ]] && stamp_ok; then
  echo "rootfs.sh: cached rootfs is up to date (built concurrently): $TARGET"
  exit 0
fi

# The running sandbox mounts this tree as the lower layer of its overlays;
# replacing it underneath them would break the running hosts.
if [[ -d $TARGET ]] && findmnt -rn -t overlay -o OPTIONS | grep -q "lowerdir=$TARGET"; then
  echo "rootfs.sh: $TARGET is in use by a running sandbox; run 'scripts/sandbox.sh down' first" >&2
  exit 1
fi

# Remove a directory tree safely: first unmount anything mounted below it
# (debootstrap mounts proc/sys inside the target and may leave them behind
# when interrupted), and never cross into another filesystem.
remove_tree() {
  local dir=$1 m
  [[ -e $dir ]] || return 0
  while read -r m; do
    [[ -n $m ]] && umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d"/") == 1' | sort -r)
  rm -rf --one-file-system "$dir"
}

# Leftovers of interrupted builds (we hold the lock, so nobody else is building).
for stale in "$ROOT_PARENT/.$SUITE.tmp."* "$ROOT_PARENT/.$SUITE.old."*; do
  [[ -e $stale ]] && { echo "rootfs.sh: removing leftover $stale"; remove_tree "$stale"; }
done

mirror=${SGLANG_GATEWAY_MIRROR:-}
if [[ -z $mirror ]]; then
  # The URI apt uses for "<suite>/main" (works for both sources.list formats).
  mirror=$(apt-cache policy 2>/dev/null | awk -v s="$SUITE/main" '$3 == s {print $2; exit}')
fi
if [[ -z $mirror ]]; then
  mirror=$(grep -rhoE '^(deb|URIs:)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]*/debian/?([[:space:]]|$)' \
             /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null |
           grep -oE 'https?://[^[:space:]]+' | grep -v security | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
# The hosts get this machine's node bind-mounted (the fake worker): only a
# same-release rootfs is sure to run it. trixie hosts are gateways only.
if [[ $host_codename != "$SUITE" && $SUITE == bookworm ]]; then
  echo "rootfs.sh: warning: host is '$host_codename', not $SUITE; the host's /usr/bin/node may not run inside" >&2
fi

TMP=$ROOT_PARENT/.$SUITE.tmp.$$
cleanup() { remove_tree "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
echo "rootfs.sh: debootstrap $SUITE from $mirror into $TMP"
mkdir -p "$TMP"
if ! debootstrap --variant=minbase --merged-usr \
      --cache-dir="$CACHE/debootstrap-debs" \
      --include="$(IFS=,; echo "${INCLUDE[*]}")" \
      "$SUITE" "$TMP" "$mirror" >"$ROOT_PARENT/debootstrap-$SUITE.log" 2>&1; then
  echo "rootfs.sh: debootstrap failed; tail of $ROOT_PARENT/debootstrap-$SUITE.log:" >&2
  tail -n 30 "$ROOT_PARENT/debootstrap-$SUITE.log" >&2
  [[ -f $TMP/debootstrap/debootstrap.log ]] && tail -n 30 "$TMP/debootstrap/debootstrap.log" >&2
  exit 1
fi

# ---- configuration -------------------------------------------------------
R=$TMP

# apt inside points at the same mirror (the containers cannot reach it; this
# only keeps `apt` from complaining).
printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$R/etc/apt/sources.list"

# sshd: root by key only; allow the burst of connections and channels that
# Pulumi's command provider and the gateway's tunnels open.
mkdir -p "$R/etc/ssh/sshd_config.d"
cat >"$R/etc/ssh/sshd_config.d/10-sglang-gateway-sandbox.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UseDNS no
MaxStartups 100:30:200
MaxSessions 64
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
ClientAliveInterval 30
CONF
# Host keys are regenerated per host by sandbox.sh; drop the build's ones.
rm -f "$R"/etc/ssh/ssh_host_*
install -d -m 700 "$R/root/.ssh"
: >"$R/root/.ssh/authorized_keys"
chmod 600 "$R/root/.ssh/authorized_keys"

# machine-id / hostname are written per host by sandbox.sh. An empty
# machine-id here means "generate one at boot" if a copy misses it.
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
echo sgw-base >"$R/etc/hostname"

# Units that hang, fail or make noise in a container without a console,
# without network configuration and without internet.
mask() { local u; for u in "$@"; do ln -sfn /dev/null "$R/etc/systemd/system/$u"; done; }
mask getty@.service serial-getty@.service console-getty.service container-getty@.service \
     getty-static.service \
     systemd-networkd-wait-online.service NetworkManager-wait-online.service \
     apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
     e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer \
     systemd-timesyncd.service systemd-firstboot.service \
     sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
     systemd-journald-audit.socket
# The default target without a console login.
ln -sfn /lib/systemd/system/multi-user.target "$R/etc/systemd/system/default.target"

# Keep the journal in memory (hosts are throw-away) and small.
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' \
  >"$R/etc/systemd/journald.conf.d/10-sandbox.conf"

# Services we rely on are enabled (deb-systemd-helper did it in the chroot;
# make sure, in case a package script skipped it).
for unit in ssh.service nginx.service; do
  [[ -e $R/lib/systemd/system/$unit ]] || { echo "rootfs.sh: $unit missing in rootfs" >&2; exit 1; }
  ln -sfn "/lib/systemd/system/$unit" "$R/etc/systemd/system/multi-user.target.wants/$unit"
done
[[ -e $R/etc/systemd/system/sshd.service ]] || ln -sfn /lib/systemd/system/ssh.service "$R/etc/systemd/system/sshd.service"

# Smaller: drop the package cache, docs and man pages.
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* \
       "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/*

# ---- checks --------------------------------------------------------------
if ! chroot "$R" /usr/sbin/nginx -V 2>&1 | grep -q -- '--with-http_auth_request_module'; then
  echo "rootfs.sh: nginx in the rootfs lacks auth_request" >&2
  exit 1
fi
for f in usr/bin/python3 usr/sbin/sshd lib/systemd/systemd usr/bin/curl usr/sbin/ip usr/bin/sudo; do
  [[ -e $R/$f ]] || { echo "rootfs.sh: /$f missing in rootfs" >&2; exit 1; }
done
chroot "$R" /usr/bin/python3 -c 'import venv, ensurepip' || {
  echo "rootfs.sh: python3 venv/ensurepip not usable in rootfs" >&2; exit 1; }

{
  echo "$RECIPE"
  echo "mirror=$mirror"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$R/$STAMP_REL"

# ---- swap into place -----------------------------------------------------
if [[ -e $TARGET ]]; then
  OLD=$ROOT_PARENT/.$SUITE.old.$$
  mv "$TARGET" "$OLD"
  mv "$TMP" "$TARGET"
  remove_tree "$OLD"
else
  mv "$TMP" "$TARGET"
fi
trap - EXIT
echo "rootfs.sh: built $TARGET in $(( $(date +%s) - start )) s ($(du -sh "$TARGET" | cut -f1))"
