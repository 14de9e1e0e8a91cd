# shellcheck shell=sh
# Environment for running the Pulumi engine built by scripts/setup/pulumi.sh.
# SOURCE this file (from bash or sh), don't execute it:
#
#   . scripts/env.sh
#
# It only exports variables; it builds, creates and downloads nothing. Run
# `bash scripts/setup/pulumi.sh` once first (a rerun is a fast no-op).
#
# Not set here on purpose: PULUMI_BACKEND_URL. Every test / script picks its own local
# state directory, e.g.
#   PULUMI_BACKEND_URL=file://$(mktemp -d) pulumi stack init test
# (a file:// backend needs no account; the state files are plain JSON under .pulumi/).

SGLANG_GATEWAY_CACHE=${SGLANG_GATEWAY_CACHE:-$HOME/.cache/sglang-gateway}
export SGLANG_GATEWAY_CACHE

# The CLI, the Node.js language host and the dynamic-provider shim live here; the engine
# takes the last two from beside the pulumi binary / PATH. First, so no other pulumi wins.
case ":${PATH:-}:" in
    ":$SGLANG_GATEWAY_CACHE/pulumi/bin:"*) ;;
    *) PATH="$SGLANG_GATEWAY_CACHE/pulumi/bin${PATH:+:$PATH}" ;;
esac
export PATH

# Pulumi's own state (credentials file, workspace settings, plugin cache), kept out of ~/.pulumi.
# The plugin cache stays empty: the only plugins needed are the bundled ones in the bin dir above.
PULUMI_HOME=$SGLANG_GATEWAY_CACHE/pulumi/home
export PULUMI_HOME

# No network except package registries: never look for a newer CLI, never download plugins.
PULUMI_SKIP_UPDATE_CHECK=true
PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION

# Secrets in local stacks are encrypted with this passphrase. Empty is fine for tests;
# a value the caller already set (even an empty one) is kept.
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE+x}" ]; then
    PULUMI_CONFIG_PASSPHRASE=
    export PULUMI_CONFIG_PASSPHRASE
fi
