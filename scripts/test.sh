#!/usr/bin/env bash
# `npm test`: set up whatever is missing, then run every suite in one mocha run
# (unit, integration against the real router and nginx, e2e on sandbox hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
if [[ $# -eq 0 ]]; then
    set -- "test/unit/**/*.test.ts" "test/integration/**/*.test.ts" "test/e2e/**/*.test.ts"
fi
exec npx mocha "$@"
