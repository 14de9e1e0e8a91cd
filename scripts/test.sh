#!/usr/bin/env bash
# `npm test`: set up whatever is missing, lint, then run every suite in one mocha run (unit,
# integration against the real routers and nginx, e2e on sandbox hosts). `npm test -- <file>` runs one file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "==> lint (typescript-eslint, prettier)"
npm run --silent lint
if [[ $# -eq 0 ]]; then
    set -- "test/unit/**/*.test.ts" "test/integration/**/*.test.ts" "test/e2e/**/*.test.ts"
fi
exec npx mocha "$@"
