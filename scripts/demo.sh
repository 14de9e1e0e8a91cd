#!/usr/bin/env bash
# The main job, on the local sandbox: hosts up → `pulumi up` (router: sglang, 2 replicas) →
# a chat completion and a streamed one through the gateway → `pulumi preview --diff` of 3
# replicas → a summary. `npm run demo -- down` destroys the stack and removes the hosts.
# The stack config is Pulumi.local.yaml completed with this cache's sandbox (state.json) in
# $SGLANG_GATEWAY_CACHE/demo/, so the committed file never changes and each cache has its own.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

bash scripts/setup.sh
source scripts/env.sh
export PULUMI_BACKEND_URL="file://$SGLANG_GATEWAY_CACHE/state"
# The local stack holds only sandbox secrets; its committed salt is for the empty passphrase.
export PULUMI_CONFIG_PASSPHRASE=""
mkdir -p "$SGLANG_GATEWAY_CACHE/state" "$SGLANG_GATEWAY_CACHE/demo"
stack=local
# Written after `sandbox up`: its addresses and key differ per cache directory.
config=$SGLANG_GATEWAY_CACHE/demo/Pulumi.$stack.yaml

if [[ "${1:-}" == "down" ]]; then
    say "pulumi destroy (stack $stack)"
    if bash scripts/sandbox.sh status >/dev/null 2>&1 && [[ -f $config ]]; then
        pulumi destroy --yes --stack "$stack" --config-file "$config" --non-interactive || true
    fi
    pulumi stack rm --yes --force --preserve-config --stack "$stack" --non-interactive 2>/dev/null || true
    say "sandbox down"
    bash scripts/sandbox.sh down
    exit 0
fi

say "sandbox hosts: a gateway and two replica hosts (systemd-nspawn, own network namespaces), fresh"
# Fresh hosts every run, so the stack state starts fresh too.
bash scripts/sandbox.sh down >/dev/null
bash scripts/sandbox.sh up
pulumi stack rm --yes --force --preserve-config --stack "$stack" --non-interactive >/dev/null 2>&1 || true
pulumi stack select --create "$stack" --non-interactive >/dev/null
cp Pulumi.$stack.yaml "$config"
stack_config() { pulumi config "$@" --stack "$stack" --config-file "$config"; }
from_sandbox() { node -p "require(process.argv[1]).$1" "$SGLANG_GATEWAY_CACHE/sandbox/state.json"; }
stack_config set --path gateway.host "$(from_sandbox hosts.gw.address)"
stack_config set --path gateway.privateKeyPath "$(from_sandbox privateKeyPath)"
stack_config set --path gateway.router.indexUrl "$(from_sandbox indexUrl)"
stack_config set --path 'services[0].hosts[0].host' "$(from_sandbox hosts.r1.address)"
stack_config set --path 'services[0].hosts[1].host' "$(from_sandbox hosts.r2.address)"
say "pulumi up: gateway $(stack_config get --path gateway.host) (nginx, SGLang router $(stack_config get --path gateway.router.version 2>/dev/null || echo "smg, the default version")), service chat with 2 replicas"
pulumi up --yes --stack "$stack" --config-file "$config" --non-interactive --skip-preview

token=$(stack_config get --path 'tokens.chat[0]')
gateway=$(pulumi stack output address --stack "$stack")
host="chat.$(pulumi stack output domain --stack "$stack")"
body='{"model":"fake-model","messages":[{"role":"user","content":"Say hello"}]}'

say "chat completion through the gateway: http://$gateway/v1/chat/completions (Host: $host)"
curl -sS -D "$SGLANG_GATEWAY_CACHE/demo-headers" -H "Host: $host" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$body" "http://$gateway/v1/chat/completions"
echo
echo "answered by replica: $(grep -i '^x-fake-worker:' "$SGLANG_GATEWAY_CACHE/demo-headers" | cut -d' ' -f2 | tr -d '\r')"

say "streamed chat completion (server-sent events)"
curl -sS -N -H "Host: $host" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "${body%\}},\"stream\":true}" "http://$gateway/v1/chat/completions" | head -c 1200
echo

say "without a token: 401; the router admin API from outside: 403"
printf 'no token      → %s\n' "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "http://$gateway/v1/models")"
printf 'GET /workers  → %s\n' "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" -H "Authorization: Bearer $token" "http://$gateway/workers")"

say "pulumi preview --diff with replicas: 3 (the stack config is restored afterwards)"
restore() { stack_config set --path 'services[0].replicas' 2 >/dev/null; }
trap restore EXIT
stack_config set --path 'services[0].replicas' 3 >/dev/null
pulumi preview --diff --stack "$stack" --config-file "$config" --non-interactive | tee "$SGLANG_GATEWAY_CACHE/demo-preview"
restore
trap - EXIT

# The preview's own tally: "+ 5 to create", and no "to update", "to delete" or "to replace".
creates=$(grep -oE '\+ [0-9]+ to create' "$SGLANG_GATEWAY_CACHE/demo-preview" | grep -oE '[0-9]+' || echo 0)
others=$(grep -oE '[0-9]+ to (update|delete|replace)' "$SGLANG_GATEWAY_CACHE/demo-preview" | paste -sd, - || true)
say "summary"
cat <<EOF
gateway        http://$gateway  (service chat at http://$host, bearer token from tokens.chat)
router         $(pulumi stack output routerPackage --stack "$stack"), one per service, loopback only
replicas       2 running; scaling to 3 previews $creates to create (replica 2 and its process, tunnel, bridge, worker), ${others:-no other change}
took           $((SECONDS - started)) s
tear down      npm run demo -- down
EOF
