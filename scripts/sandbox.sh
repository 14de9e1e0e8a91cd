#!/usr/bin/env bash
# Test sandbox: three real Debian hosts on this machine, each a systemd-nspawn
# container booted with systemd as PID 1 in its own network namespace.
#
#   gw  10.213.X.2   gateway host (nginx + SGLang router)
#   r1  10.213.X.3   replica host
#   r2  10.213.X.4   replica host
#   (every host sees $CACHE/fixtures read-only at /opt/sglang-gateway-fixtures: the fake worker)
#
# All three hang off one host bridge (10.213.X.1/24), so they reach each other
# and the host at 10.213.X.1. There is no default route: the hosts cannot reach
# anything else. Python packages come from a static index served from
# $CACHE/wheels on http://10.213.X.1:8764/simple.
#
# One sandbox per cache directory, and sandboxes of different caches (two
# checkouts, a test run and a demo) live side by side. Every machine-wide name
# carries ID, the first 6 hex digits of the sha256 of the cache's real path:
#   bridge sgwbr-ID   veths sgwv-ID-<host>   netns, machine and cgroup sgw-ID-<host>
#   subnet 10.213.X.0/24 with X = 1 + (ID mod 254)   (10.213.0.0/24 is left to
#   older checkouts, whose sandbox had the fixed names sgwbr0 and sgw-<host>)
# Inside, the hosts are still called gw, r1, r2 (hostname sgw-<host>).
# `up` claims ID and subnet in /run/sglang-gateway-sandbox/ID (cache path and
# subnet) before it creates anything, and refuses, naming what is in the way,
# if another cache holds them or any interface or route on this machine
# overlaps the subnet. `down` touches only what this cache created and claimed.
# state.json (and `names`) tell the addresses and names actually in use.
#
# Usage: scripts/sandbox.sh up|down|status|names|reboot <host> [seconds off]
#   up      create and boot the hosts (idempotent), write $CACHE/sandbox/state.json
#   down    stop and remove everything `up` created (keeps the cached rootfs and key)
#   status  exit 0 if all hosts answer on ssh, 3 if none is up, 1 if partial
#   names   print the JSON state.json would hold (names, subnet, addresses); creates nothing
#   reboot  reboot one host (gw, r1 or r2) keeping its disk: `systemctl reboot` inside it, then
#           boot it again as `up` does, after it stayed off `seconds off` (default 0; a real
#           machine's firmware and boot take tens of seconds). Returns once its sshd answers and
#           prints "reboot <host>: sshd answers after S s" (S from the reboot command, 0.1 s)
#
# Environment:
#   SGLANG_GATEWAY_CACHE            cache root (default $HOME/.cache/sglang-gateway)
#   SGLANG_GATEWAY_SANDBOX_SUBNET   another private /24 for `up`, as A.B.C or A.B.C.0/24 (when
#                                   the derived one is taken); later commands read it from the claim
#   SGLANG_GATEWAY_SANDBOX_TIMEOUT  seconds `up` waits for the hosts (default 120)
#   SGLANG_GATEWAY_SANDBOX_COPY=1   copy the rootfs per host instead of an overlay
#   SGLANG_GATEWAY_SANDBOX_RELEASES Debian release per host, as host=release words, e.g. "gw=trixie"
#                                   (Python 3.13 on the gateway); unnamed hosts are bookworm. Replicas
#                                   should stay bookworm: they run this machine's node (fake worker).
#                                   `up` on a running sandbox with other releases recreates it.
#
# A second cache can borrow the first's rootfs/, wheels/ and fixtures/ as
# symlinks (the isolation test does): no second debootstrap, its own sandbox.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The real path: the same cache reached through a symlink is the same sandbox.
CACHE=$(realpath -m "${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}")
ROOTFS_DIR=$CACHE/rootfs          # one tree per release: rootfs/<release>
SB=$CACHE/sandbox
HOSTS_DIR=$SB/hosts
RUN_DIR=$SB/run
LOG_DIR=$SB/logs
KEY=$SB/id_ed25519
STATE=$SB/state.json
WHEELS=$CACHE/wheels
FIXTURES=$CACHE/fixtures

ID=$(printf '%s' "$CACHE" | sha256sum | cut -c1-6)
BRIDGE=sgwbr-$ID                  # 12 characters; Linux allows 15
REGISTRY=/run/sglang-gateway-sandbox
CLAIM=$REGISTRY/$ID               # "cache=" and "subnet=" of the sandbox holding ID
PREFIX_LEN=24
INDEX_PORT=8764
HOSTS=(gw r1 r2)
declare -A ADDR=()
declare -A RELEASE=([gw]=bookworm [r1]=bookworm [r2]=bookworm)
TIMEOUT=${SGLANG_GATEWAY_SANDBOX_TIMEOUT:-120}

parse_releases() {
  local w h r
  local words=${SGLANG_GATEWAY_SANDBOX_RELEASES:-}
  for w in ${words//,/ }; do
    h=${w%%=*} r=${w#*=}
    [[ $w == *=* && -n ${RELEASE[$h]+x} ]] || die "SGLANG_GATEWAY_SANDBOX_RELEASES: expected host=release (hosts ${HOSTS[*]}), got '$w'"
    [[ $r == bookworm || $r == trixie ]] || die "SGLANG_GATEWAY_SANDBOX_RELEASES: release of $h must be bookworm or trixie, got '$r'"
    RELEASE[$h]=$r
  done
}
# "gw=bookworm r1=... r2=...": what `up` asks for, and (in $RUN_DIR/releases) what runs.
releases_word() { local h o=(); for h in "${HOSTS[@]}"; do o+=("$h=${RELEASE[$h]}"); done; echo "${o[*]}"; }

ns_of() { echo "sgw-$ID-$1"; }    # network namespace, also the machine and cgroup name
veth_of() { echo "sgwv-$ID-$1"; } # host side of the host's veth pair (14 characters)
hostname_of() { echo "sgw-$1"; }  # inside the host: the same in every sandbox

SSH_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no
          -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=3
          -o IdentitiesOnly=yes -i "$KEY")

log() { echo "sandbox: $*" >&2; }
die() { log "error: $*"; exit 1; }

parse_releases

host_ssh() { local h=$1; shift; ssh "${SSH_OPTS[@]}" "root@${ADDR[$h]}" "$@"; }

# ------------------------------------------------------ names and claims --

claim_field() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n1; }   # claim file, key
claim_owner() { echo "the sandbox of cache $(claim_field "$1" cache) (claim $1)"; }
owns_claim() { [[ -f $CLAIM && "$(claim_field "$CLAIM" cache)" == "$CACHE" ]]; }

set_subnet() {   # A.B.C -> the addresses on A.B.C.0/24
  SUBNET=$1
  BRIDGE_ADDR=$SUBNET.1
  INDEX_URL=http://$BRIDGE_ADDR:$INDEX_PORT/simple
  ADDR=([gw]=$SUBNET.2 [r1]=$SUBNET.3 [r2]=$SUBNET.4)
}

# The subnet of our claim (a running sandbox keeps its own), else the override, else the derived one.
choose_subnet() {
  local s=${SGLANG_GATEWAY_SANDBOX_SUBNET:-} o='(0|[1-9][0-9]{0,2})'
  if owns_claim; then
    set_subnet "$(claim_field "$CLAIM" subnet)"
  elif [[ -n $s ]]; then
    s=${s%.0/24}
    # A private range only: the bridge's route would hide a public one from this machine.
    if ! [[ $s =~ ^$o\.$o\.$o$ ]] || ((BASH_REMATCH[2] > 255 || BASH_REMATCH[3] > 255)) ||
       ! ((BASH_REMATCH[1] == 10 || (BASH_REMATCH[1] == 172 && BASH_REMATCH[2] >= 16 && BASH_REMATCH[2] <= 31) ||
          (BASH_REMATCH[1] == 192 && BASH_REMATCH[2] == 168))); then
      die "SGLANG_GATEWAY_SANDBOX_SUBNET: expected A.B.C or A.B.C.0/24 in 10/8, 172.16/12 or 192.168/16, got '$SGLANG_GATEWAY_SANDBOX_SUBNET'"
    fi
    set_subnet "$s"
  else
    set_subnet "10.213.$((16#$ID % 254 + 1))"
  fi
}
choose_subnet

ip_int() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $(((a << 24) | (b << 16) | (c << 8) | d)); }

# True if the network A.B.C.D[/len] overlaps our /24 (no length: one address).
overlaps() {
  local len=32 mask
  [[ $1 == */* ]] && len=${1#*/}
  ((len < PREFIX_LEN)) || len=$PREFIX_LEN
  mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
  (((($(ip_int "${1%/*}") ^ $(ip_int "$SUBNET.0")) & mask) == 0))
}

describe_link() {   # an interface, and whose sandbox it is if it is a sandbox bridge
  local dev=$1 f
  case $dev in
    sgwbr0) echo "bridge sgwbr0 of a sandbox of an older scripts/sandbox.sh (fixed names; take it down from that checkout)" ;;
    sgwbr-*)
      f=$REGISTRY/${dev#sgwbr-}
      if [[ -f $f ]]; then echo "bridge $dev of $(claim_owner "$f")"; else echo "bridge $dev (a sandbox with no claim)"; fi ;;
    *) echo "interface $dev" ;;
  esac
}

# Claim ID and the subnet for this cache, or refuse, naming what holds them.
# Runs once this cache's own leftovers are gone, so whatever is in the way now
# belongs to someone else and is left as it is. The machine-wide lock makes
# check-and-claim atomic between caches; the claim then reserves the subnet
# for the whole `up`, before the bridge holds it.
claim() {
  local problems=() h f dev cidr prefix route p
  mkdir -p "$REGISTRY"
  exec 8>"$REGISTRY/.lock"
  flock 8
  if [[ -f $CLAIM ]] && ! owns_claim; then problems+=("id $ID is held by $(claim_owner "$CLAIM")"); fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && problems+=("the name $BRIDGE is taken: $(describe_link "$BRIDGE")")
  for h in "${HOSTS[@]}"; do
    [[ -e /run/netns/$(ns_of "$h") ]] && problems+=("network namespace $(ns_of "$h") exists")
    ip link show "$(veth_of "$h")" >/dev/null 2>&1 && problems+=("interface $(veth_of "$h") exists")
  done
  for f in "$REGISTRY"/*; do
    [[ -f $f && $f != "$CLAIM" ]] || continue
    [[ "$(claim_field "$f" subnet)" == "$SUBNET" ]] && problems+=("$SUBNET.0/24 is claimed by $(claim_owner "$f")")
  done
  while read -r dev cidr; do
    overlaps "$cidr" && problems+=("$cidr is on $(describe_link "$dev")")
  done < <(ip -o -4 addr show | awk '{print $2, $4}')
  # Routes other than the addresses' own (proto kernel): a VPN's 10.0.0.0/8, a static route.
  while read -r prefix route; do
    overlaps "$prefix" && problems+=("route $route")
  done < <(ip -4 route show table main | awk '$1 != "default" && !/ proto kernel / {
             print ($1 ~ /^(blackhole|unreachable|prohibit|throw)$/ ? $2 : $1), $0 }')
  if ((${#problems[@]})); then
    exec 8>&-
    log "error: refusing to start: the sandbox of $CACHE would use bridge $BRIDGE,"
    log "  namespaces and machines sgw-$ID-{gw,r1,r2} and subnet $SUBNET.0/24, but:"
    for p in "${problems[@]}"; do log "  - $p"; done
    log "Nothing was created or removed. Ways out: take the other cache's sandbox down"
    log "(SGLANG_GATEWAY_CACHE=<that cache> $0 down); for the subnet, set"
    log "SGLANG_GATEWAY_SANDBOX_SUBNET=A.B.C; for the id (two caches' hashes clash), use another cache."
    exit 1
  fi
  # Hidden while written: the glob above reads only whole claims.
  printf 'cache=%s\nsubnet=%s\n' "$CACHE" "$SUBNET" >"$REGISTRY/.$ID.$$"
  mv "$REGISTRY/.$ID.$$" "$CLAIM"
  exec 8>&-
}

# ---------------------------------------------------------------- helpers --

# True if the process exists and is not a zombie (PID 1 on this machine reaps
# orphans only after a moment; `kill -0` succeeds on zombies).
proc_alive() {
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# True if the process has every given word as one whole argument. Each
# caller passes a path inside this cache, so only this cache's processes match
# (a substring would also match a cache whose path extends ours).
has_args() {
  local pid=$1 w a ok args=()
  shift
  { mapfile -d '' args <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
  for w in "$@"; do
    ok=0
    for a in "${args[@]}"; do [[ $a == "$w" ]] && { ok=1; break; }; done
    ((ok)) || return 1
  done
}

# PID from a pid file if that process is alive and is what we expect (a
# recycled pid of another cache's process has other arguments).
live_pid() {
  local file=$1 comm=$2 pid
  shift 2
  [[ -s $file ]] || return 1
  pid=$(cat "$file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
  proc_alive "$pid" || return 1
  has_args "$pid" "$@" || return 1
  echo "$pid"
}

# PIDs of processes named comm (a glob) with all the given whole arguments
# (used to find our own systemd-nspawn / file server if a pid file is lost).
pids_with_args() {
  local comm=$1 p c
  shift
  for p in /proc/[0-9]*; do
    { read -r c <"$p/comm"; } 2>/dev/null || continue
    # shellcheck disable=SC2053  # comm is a glob on purpose
    [[ $c == $comm ]] || continue
    has_args "${p#/proc/}" "$@" && echo "${p#/proc/}"
  done
  return 0
}

nspawn_pids() {   # host name -> pids of its systemd-nspawn
  local h=$1
  { live_pid "$RUN_DIR/$h.pid" systemd-nspawn -D "$HOSTS_DIR/$h/root" || true
    pids_with_args systemd-nspawn -D "$HOSTS_DIR/$h/root"; } | sort -u
}

fileserver_pids() {
  { live_pid "$RUN_DIR/fileserver.pid" python3 http.server --directory "$WHEELS" || true
    pids_with_args 'python*' http.server --directory "$WHEELS"; } | sort -u
}

ssh_answers() { host_ssh "$1" true </dev/null >/dev/null 2>&1; }

# Unmount everything at or below a directory, deepest first.
umount_below() {
  local dir=$1 m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | awk -v d="$dir" '$0 == d || index($0, d"/") == 1' | sort -r)
}

remove_tree() {
  local dir=$1
  [[ -e $dir ]] || return 0
  umount_below "$dir"
  rm -rf --one-file-system "$dir"
}

# Anything of this cache's sandbox. Links and namespaces exist only under our
# claim (up claims before it creates them), so the claim stands for them.
something_exists() {
  local h
  [[ -e $STATE ]] && return 0
  owns_claim && return 0
  [[ -n "$(fileserver_pids)" ]] && return 0
  for h in "${HOSTS[@]}"; do
    [[ -e $HOSTS_DIR/$h ]] && return 0
    [[ -n "$(nspawn_pids "$h")" ]] && return 0
  done
  return 1
}

# ------------------------------------------------------------------- down --

# Only what this cache owns: its processes and files (found by its paths) and,
# under its claim, the links, namespaces and cgroups named by its id.
do_down() {
  local h pid pids=() deadline ns owned=0
  owns_claim && owned=1
  # 1. Ask every container to power off (systemd-nspawn turns SIGTERM into a
  #    clean shutdown of the container's systemd), then wait, then kill.
  for h in "${HOSTS[@]}"; do
    for pid in $(nspawn_pids "$h"); do
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
  done
  deadline=$((SECONDS + 15))
  while ((${#pids[@]})); do
    local alive=()
    for pid in "${pids[@]}"; do proc_alive "$pid" && alive+=("$pid"); done
    pids=("${alive[@]+"${alive[@]}"}")
    ((${#pids[@]})) || break
    if ((SECONDS >= deadline)); then
      log "containers did not stop within 15 s; killing ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  # 2. Anything still living in our namespaces (a container whose
  #    systemd-nspawn was killed) goes too.
  for h in "${HOSTS[@]}"; do
    ns=$(ns_of "$h")
    if ((owned)) && [[ -e /run/netns/$ns ]]; then
      mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
      if ((${#pids[@]})); then
        kill -KILL "${pids[@]}" 2>/dev/null || true
        sleep 0.3
      fi
    fi
  done
  # 3. The wheel file server.
  for pid in $(fileserver_pids); do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 25); do
    if [[ -z "$(fileserver_pids)" ]]; then break; fi
    sleep 0.1
  done
  for pid in $(fileserver_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  # 4. Links, namespaces, bridge, cgroups.
  if ((owned)); then
    for h in "${HOSTS[@]}"; do
      ip link del "$(veth_of "$h")" 2>/dev/null || true
      ns=$(ns_of "$h")
      if [[ -e /run/netns/$ns ]]; then ip netns del "$ns" 2>/dev/null || true; fi
      # systemd-nspawn's per-machine directory, left behind when it is killed.
      remove_tree "/run/systemd/nspawn/propagate/$ns"
    done
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  for h in "${HOSTS[@]}"; do remove_host_cgroups "$h" "$owned"; done
  # 5. Per-host filesystems (overlay upper layers or copies), run files, state.
  for h in "${HOSTS[@]}"; do
    # systemd-nspawn locks the image by inode and leaves the lock file behind
    # when it is killed; remove ours.
    local st
    if st=$(stat -c '%d:%i' "$HOSTS_DIR/$h/root" 2>/dev/null); then
      rm -f "/run/systemd/nspawn/locks/inode-$st"
    fi
    remove_tree "$HOSTS_DIR/$h"
  done
  rm -f "$STATE" "$RUN_DIR"/*.pid "$RUN_DIR/releases"
  # Verify. Names of ours that someone else holds are theirs: reported, not counted.
  local left=() named=()
  ip link show "$BRIDGE" >/dev/null 2>&1 && named+=("bridge $BRIDGE")
  for h in "${HOSTS[@]}"; do
    [[ -e /run/netns/$(ns_of "$h") ]] && named+=("netns $(ns_of "$h")")
    ip link show "$(veth_of "$h")" >/dev/null 2>&1 && named+=("link $(veth_of "$h")")
    [[ -n "$(nspawn_pids "$h")" ]] && left+=("systemd-nspawn of $h")
    [[ -e $HOSTS_DIR/$h ]] && left+=("$HOSTS_DIR/$h")
  done
  [[ -n "$(fileserver_pids)" ]] && left+=("file server")
  if ((owned)); then
    left+=("${named[@]+"${named[@]}"}")
  elif ((${#named[@]})); then
    local holder="nobody claims id $ID"
    [[ -f $CLAIM ]] && holder="id $ID is held by $(claim_owner "$CLAIM")"
    log "down: left alone, not this cache's ($holder): ${named[*]}"
  fi
  if ((${#left[@]})); then
    log "down: could not remove: ${left[*]}"
    return 1
  fi
  # Nothing of ours is left: release the id and the subnet.
  if ((owned)); then rm -f "$CLAIM"; fi
  return 0
}

# ----------------------------------------------------------------- status --

do_status() {
  local h up=0 n=${#HOSTS[@]} state rel
  for h in "${HOSTS[@]}"; do
    local nspawn answers=0
    nspawn=$(nspawn_pids "$h")
    if owns_claim && [[ -e /run/netns/$(ns_of "$h") && -f $KEY ]] && ssh_answers "$h"; then answers=1; fi
    if [[ -n $nspawn && $answers == 1 ]]; then
      state="up (sshd answers)"; up=$((up + 1))
    elif [[ -n $nspawn ]]; then
      state="DOWN (container running, sshd not answering)"
    elif [[ $answers == 1 ]]; then
      state="DOWN (orphaned: sshd answers but its systemd-nspawn is gone; run down)"
    else
      state="down"
    fi
    # The release it runs with (up recorded it), else the one up would use.
    rel=$(tr ' ' '\n' 2>/dev/null <"$RUN_DIR/releases" | sed -n "s/^$h=//p")
    printf '%-3s %-11s %-8s %s\n' "$h" "${ADDR[$h]}" "${rel:-${RELEASE[$h]}}" "$state"
  done
  if [[ -n "$(fileserver_pids)" ]]; then
    printf 'index %s (serving %s)\n' "$INDEX_URL" "$WHEELS"
  else
    printf 'index %s down\n' "$INDEX_URL"
  fi
  printf 'names bridge %s, netns/machines %s, subnet %s.0/24\n' "$BRIDGE" "$(ns_of '{gw,r1,r2}')" "$SUBNET"
  if [[ -f $CLAIM ]] && ! owns_claim; then printf 'claim id %s is held by %s\n' "$ID" "$(claim_owner "$CLAIM")"; fi
  [[ -f $STATE ]] && printf 'state %s\n' "$STATE"
  if ((up == n)); then return 0; elif ((up == 0)); then return 3; else return 1; fi
}

all_up() {
  local h
  [[ -f $STATE && -f $KEY ]] || return 1
  [[ -n "$(fileserver_pids)" ]] || return 1
  [[ "$(cat "$RUN_DIR/releases" 2>/dev/null)" == "$(releases_word)" ]] || return 1
  for h in "${HOSTS[@]}"; do
    [[ -n "$(nspawn_pids "$h")" ]] || return 1
    ssh_answers "$h" || return 1
  done
}

# ----------------------------------------------------------------- reboot --

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# A container's `systemctl reboot` makes systemd-nspawn exit (133) instead of booting again:
# nothing here supervises it, so the host is started again the way `up` starts it. Its disk
# (overlay upper layer or copy), namespace and addresses stay; only the boot is new.
do_reboot() {
  local h=$1 off=${2:-0} started pid pids deadline
  [[ -n $h && -n ${ADDR[$h]+x} ]] || die "reboot: expected a host (${HOSTS[*]}), got '${h}'"
  [[ $off =~ ^[0-9]+$ ]] || die "reboot: seconds off must be a whole number, got '$off'"
  { owns_claim && [[ -f $STATE && -f $KEY ]]; } || die "reboot: no sandbox of $CACHE is up (run up first)"
  mapfile -t pids < <(nspawn_pids "$h")
  ((${#pids[@]})) || die "reboot: $h is not running (run up)"
  started=$(now)
  # The connection drops while the host goes down: its exit status says nothing.
  host_ssh "$h" "systemctl reboot" </dev/null >/dev/null 2>&1 || true
  deadline=$((SECONDS + 60))
  for pid in "${pids[@]}"; do
    while proc_alive "$pid"; do
      if ((SECONDS >= deadline)); then
        log "reboot: $h did not go down within 60 s; killing its systemd-nspawn $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.1
    done
  done
  if ((off > 0)); then
    log "reboot $h: down after $(since "$started") s; booting it again in $off s"
    sleep "$off"
  else
    log "reboot $h: down after $(since "$started") s; booting it again"
  fi
  # The boot's empty cgroups, so the next systemd-nspawn starts in a clean one.
  remove_host_cgroups "$h" 1
  start_host "$h"
  deadline=$((SECONDS + TIMEOUT))
  until ssh_answers "$h"; do
    [[ -n "$(live_pid "$RUN_DIR/$h.pid" systemd-nspawn || true)" ]] || boot_failure "$h" "systemd-nspawn exited during the reboot"
    ((SECONDS < deadline)) || boot_failure "$h" "sshd did not answer within ${TIMEOUT} s of the reboot"
    sleep 0.1
  done
  echo "reboot $h: sshd answers after $(since "$started") s"
}

# --------------------------------------------------------------------- up --

prepare_host_fs() {
  local h=$1 dir=$HOSTS_DIR/$1 root lower
  root=$dir/root
  # The real path, so rootfs.sh sees a borrowed rootfs (a symlink) in use too.
  lower=$(realpath -e "$ROOTFS_DIR/${RELEASE[$h]}")
  mkdir -p "$dir"
  if [[ ${SGLANG_GATEWAY_SANDBOX_COPY:-0} == 1 ]]; then
    cp -a --reflink=auto "$lower" "$root"
  else
    mkdir -p "$dir/upper" "$dir/work" "$root"
    mount -t overlay "sgw-overlay-$ID-$h" \
      -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$root" ||
      die "overlay mount for $h failed (set SGLANG_GATEWAY_SANDBOX_COPY=1 to copy the rootfs instead)"
  fi
  # Identity.
  hostname_of "$h" >"$root/etc/hostname"
  tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    local o
    for o in "${HOSTS[@]}"; do echo "${ADDR[$o]} $(hostname_of "$o") $o"; done
    echo "$BRIDGE_ADDR sgw-host"
  } >"$root/etc/hosts"
  # No DNS: an empty resolv.conf makes lookups fail at once (127.0.0.1:53
  # refuses) instead of timing out against an unreachable server.
  rm -f "$root/etc/resolv.conf"
  echo "# sandbox host: no DNS" >"$root/etc/resolv.conf"
  # Fresh ssh host keys per host, and our key for root.
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -A -f "$root" >/dev/null
  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$KEY.pub" "$root/root/.ssh/authorized_keys"
}

setup_network() {
  local h ns veth
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_ADDR/$PREFIX_LEN" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for h in "${HOSTS[@]}"; do
    ns=$(ns_of "$h"); veth=$(veth_of "$h")
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE"
    ip link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "${ADDR[$h]}/$PREFIX_LEN" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# Cgroups. With no systemd on this machine, systemd-nspawn --keep-unit puts
# the container in "payload" (and itself in "supervisor") *below the cgroup it
# was started in*. Started from the same cgroup, the three containers would
# share one cgroup tree: their systemds then create and remove each other's
# unit cgroups (units fail at random with 219/CGROUP "No such device", and
# same-named units on r1 and r2 would share a cgroup). So each container gets
# its own cgroup sgw-ID-<host> below ours, in every hierarchy systemd uses.
cgroup_roots() {   # mount point + path of our cgroup, per systemd hierarchy
  local rel
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then   # pure cgroup v2
    rel=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
    echo "/sys/fs/cgroup${rel%/}"
    return
  fi
  if [[ -d /sys/fs/cgroup/systemd ]]; then              # v1 / hybrid
    rel=$(awk -F: '$2 == "name=systemd" {print $3}' /proc/self/cgroup)
    echo "/sys/fs/cgroup/systemd${rel%/}"
  fi
  if [[ -f /sys/fs/cgroup/unified/cgroup.procs ]]; then
    rel=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
    echo "/sys/fs/cgroup/unified${rel%/}"
  fi
}

# Run in the subshell that becomes systemd-nspawn: move it into its own cgroups.
enter_host_cgroups() {
  local h=$1 root dir
  : >"$RUN_DIR/$h.cgroups"
  for root in $(cgroup_roots); do
    dir=$root/$(ns_of "$h")
    mkdir -p "$dir"
    echo "$dir" >>"$RUN_DIR/$h.cgroups"
    echo "$BASHPID" >"$dir/cgroup.procs"
  done
}

remove_host_cgroups() {   # host, 1 if we hold the claim (then also the cgroups by name)
  local h=$1 owned=$2 dir
  {
    [[ -f $RUN_DIR/$h.cgroups ]] && cat "$RUN_DIR/$h.cgroups"
    if ((owned)); then for dir in $(cgroup_roots); do echo "$dir/$(ns_of "$h")"; done; fi
  } | sort -u | while read -r dir; do
    [[ -n $dir && -d $dir && $(basename "$dir") == "$(ns_of "$h")" ]] || continue
    # Depth first; a cgroup directory is removed with rmdir (it only holds
    # control files). Fails harmlessly while processes remain.
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -f "$RUN_DIR/$h.cgroups"
}

start_host() {
  local h=$1 root=$HOSTS_DIR/$1/root node_args=() node pid
  node=$(command -v node 2>/dev/null || true)
  if [[ -n $node ]]; then
    node_args=("--bind-ro=$(readlink -f "$node"):/usr/bin/node")
  else
    log "warning: no node on this machine; hosts get no /usr/bin/node"
  fi
  # Test fixtures (the fake SGLang worker, built by scripts/setup.sh) appear read-only on every host.
  mkdir -p "$FIXTURES"
  node_args+=("--bind-ro=$FIXTURES:/opt/sglang-gateway-fixtures")
  : >"$LOG_DIR/$h.log"
  # setsid: the container must outlive this script and its caller's terminal
  # or process group. All descriptors are redirected so a caller that reads
  # our output (execSync, CI) is not kept waiting by the background process.
  ( enter_host_cgroups "$h"
    exec setsid systemd-nspawn -D "$root" -b \
    --register=no --keep-unit \
    --network-namespace-path="/run/netns/$(ns_of "$h")" \
    -M "$(ns_of "$h")" --hostname="$(hostname_of "$h")" \
    --console=passive --link-journal=no --resolv-conf=off --timezone=off \
    "${node_args[@]}"
  ) </dev/null >"$LOG_DIR/$h.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$RUN_DIR/$h.pid"
  # The subshell moves itself into its cgroups, then execs systemd-nspawn.
  for _ in $(seq 1 100); do
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == systemd-nspawn ]] && return 0
    proc_alive "$pid" || break
    sleep 0.05
  done
  boot_failure "$h" "systemd-nspawn did not start"
}

start_fileserver() {
  local py pid
  py=/usr/bin/python3
  [[ -x $py ]] || py=$(command -v python3)
  mkdir -p "$WHEELS"
  : >"$LOG_DIR/fileserver.log"
  setsid "$py" -m http.server "$INDEX_PORT" --bind "$BRIDGE_ADDR" --directory "$WHEELS" \
    </dev/null >"$LOG_DIR/fileserver.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$RUN_DIR/fileserver.pid"
}

boot_failure() {
  local h=$1 why=$2
  log "error: host $h (${ADDR[$h]}): $why"
  log "---- tail of $LOG_DIR/$h.log ----"
  tail -n 40 "$LOG_DIR/$h.log" >&2 || true
  log "----"
  exit 1
}

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) h pending=("${HOSTS[@]}") rest state
  # sshd answers.
  while ((${#pending[@]})); do
    rest=()
    for h in "${pending[@]}"; do
      [[ -n "$(live_pid "$RUN_DIR/$h.pid" systemd-nspawn || true)" ]] ||
        boot_failure "$h" "systemd-nspawn exited during boot"
      ssh_answers "$h" || rest+=("$h")
    done
    pending=("${rest[@]+"${rest[@]}"}")
    ((${#pending[@]})) || break
    ((SECONDS < deadline)) || boot_failure "${pending[0]}" "sshd did not answer within ${TIMEOUT} s"
    sleep 0.5
  done
  # systemd finished booting.
  for h in "${HOSTS[@]}"; do
    local remaining=$((deadline - SECONDS)); ((remaining > 5)) || remaining=5
    state=$(host_ssh "$h" "timeout $remaining systemctl is-system-running --wait" </dev/null 2>/dev/null || true)
    case $state in
      running) ;;
      degraded)
        log "warning: $h is degraded; failed units:"
        host_ssh "$h" "systemctl --failed --no-legend --plain" </dev/null >&2 || true ;;
      *) boot_failure "$h" "systemctl is-system-running says '${state:-nothing}'" ;;
    esac
  done
  # The index answers.
  while ! curl -fsS -o /dev/null --max-time 2 "http://$BRIDGE_ADDR:$INDEX_PORT/"; do
    [[ -n "$(live_pid "$RUN_DIR/fileserver.pid" python3 || true)" ]] || {
      tail -n 20 "$LOG_DIR/fileserver.log" >&2 || true
      die "the wheel file server exited"; }
    ((SECONDS < deadline)) || die "the wheel file server did not answer on $INDEX_URL"
    sleep 0.2
  done
}

# What the tests and the demo read: addresses, key, index, and the machine-wide names.
state_json() {
  local h sep
  printf '{\n  "hosts": {\n'
  sep=""
  for h in "${HOSTS[@]}"; do
    printf '%s    "%s": {"address": "%s", "user": "root", "port": 22, "release": "%s"}' \
      "$sep" "$h" "${ADDR[$h]}" "${RELEASE[$h]}"
    sep=$',\n'
  done
  printf '\n  },\n'
  printf '  "privateKeyPath": "%s",\n' "$KEY"
  printf '  "indexUrl": "%s",\n' "$INDEX_URL"
  printf '  "bridgeAddress": "%s",\n' "$BRIDGE_ADDR"
  printf '  "cache": "%s",\n' "$CACHE"
  printf '  "id": "%s",\n' "$ID"
  printf '  "claim": "%s",\n' "$CLAIM"
  printf '  "subnet": "%s.0/%s",\n' "$SUBNET" "$PREFIX_LEN"
  printf '  "bridge": "%s",\n' "$BRIDGE"
  printf '  "netns": {'
  sep=""
  for h in "${HOSTS[@]}"; do printf '%s"%s": "%s"' "$sep" "$h" "$(ns_of "$h")"; sep=", "; done
  printf '},\n  "veths": {'
  sep=""
  for h in "${HOSTS[@]}"; do printf '%s"%s": "%s"' "$sep" "$h" "$(veth_of "$h")"; sep=", "; done
  printf '}\n}\n'
}

write_state() {
  state_json >"$STATE.tmp"
  mv "$STATE.tmp" "$STATE"
}

UP_DONE=0
on_up_exit() {
  local rc=$?
  if ((rc != 0)) && ((UP_DONE == 0)); then
    log "up failed (exit $rc); tearing down what was created"
    do_down || true
  fi
  exit "$rc"
}

# Every container's systemd, journald and logind take inotify instances, all counted against root:
# Debian's default of 128 runs out at about three sandboxes side by side (npm test runs three, and the
# isolation test two more), and a container that cannot get one fails to boot.
raise_inotify_limit() {
  local now
  now=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
  if ((now > 0 && now < 1024)); then
    if echo 1024 >/proc/sys/fs/inotify/max_user_instances 2>/dev/null; then
      log "raised fs.inotify.max_user_instances from $now to 1024 (each booted container takes several)"
    fi
  fi
}

do_up() {
  local start=$SECONDS h bin
  raise_inotify_limit
  if all_up; then
    log "already up"
    if [[ -n ${SGLANG_GATEWAY_SANDBOX_SUBNET:-} && ${SGLANG_GATEWAY_SANDBOX_SUBNET%.0/24} != "$SUBNET" ]]; then
      log "warning: it keeps $SUBNET.0/24; SGLANG_GATEWAY_SANDBOX_SUBNET applies to the next up after a down"
    fi
    do_status
    return 0
  fi
  if something_exists; then
    local running
    running=$(cat "$RUN_DIR/releases" 2>/dev/null || true)
    if [[ -n $running && $running != "$(releases_word)" ]]; then
      log "it runs $running; recreating it with $(releases_word)"
    else
      log "found a partial sandbox; tearing it down first"
    fi
    do_down
    choose_subnet   # our claim went with it
  fi
  for bin in debootstrap systemd-nspawn ip ssh ssh-keygen curl; do
    command -v "$bin" >/dev/null 2>&1 || { bash "$HERE/setup/apt.sh"; break; }
  done
  claim
  trap on_up_exit EXIT
  trap 'exit 130' INT TERM HUP

  local rel
  for rel in $(printf '%s\n' "${RELEASE[@]}" | sort -u); do bash "$HERE/setup/rootfs.sh" "$rel" >&2; done

  mkdir -p "$HOSTS_DIR" "$RUN_DIR" "$LOG_DIR"
  if [[ ! -f $KEY || ! -f $KEY.pub ]]; then
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C sglang-gateway-sandbox -f "$KEY"
  fi

  for h in "${HOSTS[@]}"; do prepare_host_fs "$h"; done
  setup_network
  for h in "${HOSTS[@]}"; do start_host "$h"; done
  start_fileserver
  wait_ready
  releases_word >"$RUN_DIR/releases"
  write_state
  UP_DONE=1
  trap - EXIT INT TERM HUP
  log "up in $((SECONDS - start)) s"
  do_status
}

# ------------------------------------------------------------------- main --

cmd=${1:-}
[[ $cmd == names || $(id -u) -eq 0 ]] || die "must run as root (network namespaces, systemd-nspawn)"
case $cmd in
  up|down|reboot)
    mkdir -p "$SB"
    exec 9>"$SB/.lock"
    flock 9
    if [[ $cmd == up ]]; then
      do_up
    elif [[ $cmd == reboot ]]; then
      do_reboot "${2:-}" "${3:-0}"
    else
      start=$SECONDS
      do_down
      log "down in $((SECONDS - start)) s"
    fi
    ;;
  status)
    rc=0; do_status || rc=$?
    exit "$rc"
    ;;
  names)
    state_json
    ;;
  *)
    echo "usage: $0 up|down|status|names|reboot <host> [seconds off]" >&2
    exit 2
    ;;
esac
