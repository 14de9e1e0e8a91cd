#!/usr/bin/env bash
# `npm test`: set up whatever is missing, lint, then run every suite: unit, integration against the real
# routers and nginx, and e2e on sandbox hosts. The e2e suites run in three lanes at once, each with its own
# sandbox (its own cache directory, borrowing the toolchain: sandbox names derive from the cache), because
# they mostly wait on hosts; each lane is one mocha run, and the last line sums them for CI.
# `npm test -- <file>...` runs just those files, in one lane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "==> lint (typescript-eslint, prettier)"
npm run --silent lint
if [[ $# -gt 0 ]]; then
    exec npx mocha "$@"
fi

# Lanes B and C: e2e suites that need no other lane's host state, each lane on a sandbox of its own. Lane A
# runs unit and integration first, then the e2e suites named in neither.
lane_b=(test/e2e/pd.test.ts test/e2e/rolling-update.test.ts test/e2e/router-crash.test.ts test/e2e/host-keys.test.ts test/e2e/model-endpoint.test.ts test/e2e/observability.test.ts test/e2e/acme.test.ts)
lane_c=(test/e2e/reboots.test.ts test/e2e/interrupted-apply.test.ts test/e2e/unprivileged.test.ts test/e2e/hostile-requests.test.ts test/e2e/many-services.test.ts)
lane_a=("test/unit/**/*.test.ts" "test/integration/**/*.test.ts")
for file in test/e2e/*.test.ts; do
    [[ " ${lane_b[*]} ${lane_c[*]} " == *" $file "* ]] || lane_a+=("$file")
done

# A lane's cache: the toolchain borrowed from the main cache, a sandbox of its own on a subnet after the main one.
main_subnet=$(bash scripts/sandbox.sh names | python3 -c 'import json, sys; print(json.load(sys.stdin)["subnet"])')
third=$(cut -d. -f3 <<<"$main_subnet")
start_lane() { # name offset files...
    local name=$1 offset=$2
    shift 2
    local cache=$SGLANG_GATEWAY_CACHE/lanes/$name
    mkdir -p "$cache"
    for shared in debootstrap-debs fixtures pebble pulumi rootfs routers routers.stamp router-venv router-0.3.2.stamp wheels; do
        [[ -e "$SGLANG_GATEWAY_CACHE/$shared" && ! -e "$cache/$shared" ]] && ln -s "$SGLANG_GATEWAY_CACHE/$shared" "$cache/$shared"
    done
    local log=/tmp/sglang-gateway-lane-$name.log
    echo "==> e2e lane $name in the background ($*), log: $log"
    (SGLANG_GATEWAY_CACHE=$cache SGLANG_GATEWAY_SANDBOX_SUBNET=10.213.$(((third + offset - 1) % 254 + 1)) npx mocha "$@" >"$log" 2>&1) &
}
start_lane b 1 "${lane_b[@]}"
pid_b=$!
start_lane c 2 "${lane_c[@]}"
pid_c=$!
set +e
npx mocha "${lane_a[@]}" | tee /tmp/sglang-gateway-lane-a.log
status_a=${PIPESTATUS[0]}
wait "$pid_b"
status_b=$?
wait "$pid_c"
status_c=$?
set -e
for name in b c; do
    echo
    echo "==> e2e lane $name"
    cat "/tmp/sglang-gateway-lane-$name.log"
done
count() {
    local value
    value=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$1" 2>/dev/null | tail -1 | grep -oE '[0-9]+' | sed -n "$2p")
    echo "${value:-0}"
}
total() {
    local sum=0 lane
    for lane in a b c; do sum=$((sum + $(count "/tmp/sglang-gateway-lane-$lane.log" "$1"))); done
    echo "$sum"
}
echo
echo "all lanes: $(total 1) passed, $(total 2) failed, $(total 3) skipped"
echo "$(total 1) passed, $(total 2) failed, $(total 3) skipped"
[[ $status_a -eq 0 && $status_b -eq 0 && $status_c -eq 0 ]]
