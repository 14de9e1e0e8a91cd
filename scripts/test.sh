#!/usr/bin/env bash
# `npm test`: set up whatever is missing, lint, then run every suite: unit, integration against the real
# routers and nginx, and e2e on sandbox hosts. The e2e suites run in two lanes at once, each with its own
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

# Lane B: e2e suites that need no other lane's host state; the rest run in lane A after unit and integration.
lane_b=(test/e2e/pd.test.ts test/e2e/rolling-update.test.ts test/e2e/router-crash.test.ts test/e2e/host-keys.test.ts)
lane_a=("test/unit/**/*.test.ts" "test/integration/**/*.test.ts")
for file in test/e2e/*.test.ts; do
    [[ " ${lane_b[*]} " == *" $file "* ]] || lane_a+=("$file")
done

# Lane B's cache: the toolchain borrowed from the main cache, a sandbox of its own on the next subnet.
lane_cache=$SGLANG_GATEWAY_CACHE/lanes/b
mkdir -p "$lane_cache"
for shared in debootstrap-debs fixtures pulumi rootfs routers routers.stamp router-venv router-0.3.2.stamp wheels; do
    [[ -e "$SGLANG_GATEWAY_CACHE/$shared" && ! -e "$lane_cache/$shared" ]] && ln -s "$SGLANG_GATEWAY_CACHE/$shared" "$lane_cache/$shared"
done
main_subnet=$(bash scripts/sandbox.sh names | python3 -c 'import json, sys; print(json.load(sys.stdin)["subnet"])')
third=$(cut -d. -f3 <<<"$main_subnet")
lane_subnet=10.213.$((third % 254 + 1))

lane_log=$(mktemp /tmp/sglang-gateway-lane-b.XXXXXX)
echo "==> e2e lane B in the background (${lane_b[*]}), log: $lane_log"
(SGLANG_GATEWAY_CACHE=$lane_cache SGLANG_GATEWAY_SANDBOX_SUBNET=$lane_subnet npx mocha "${lane_b[@]}" >"$lane_log" 2>&1) &
lane_pid=$!
set +e
npx mocha "${lane_a[@]}" | tee /tmp/sglang-gateway-lane-a.log
status_a=${PIPESTATUS[0]}
wait "$lane_pid"
status_b=$?
set -e
echo
echo "==> e2e lane B (${lane_b[*]})"
cat "$lane_log"
count() { grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$1" | tail -1 | grep -oE '[0-9]+' | sed -n "$2p"; }
passed=$(( $(count /tmp/sglang-gateway-lane-a.log 1 || echo 0) + $(count "$lane_log" 1 || echo 0) ))
failed=$(( $(count /tmp/sglang-gateway-lane-a.log 2 || echo 0) + $(count "$lane_log" 2 || echo 0) ))
skipped=$(( $(count /tmp/sglang-gateway-lane-a.log 3 || echo 0) + $(count "$lane_log" 3 || echo 0) ))
echo
echo "both lanes: $passed passed, $failed failed, $skipped skipped"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $status_a -eq 0 && $status_b -eq 0 ]]
