#!/usr/bin/env bash
# `npm test`: set up whatever is missing, then run every suite in one mocha run
# (unit, integration against the real router and nginx, e2e on sandbox hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec npx mocha --config .mocharc.json "$@"
