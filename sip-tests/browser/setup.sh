#!/usr/bin/env bash
# Installs the browser tests' npm package (puppeteer-core drives Debian's chromium, never a
# downloaded browser) and the webphone example's JsSIP bundle (the page under test is
# examples/webphone). Idempotent; the test runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# One at a time (parallel test processes, a user running it meanwhile).
exec 9>.setup.lock
flock 9
if [[ ! -d node_modules/puppeteer-core ]]; then
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error
fi
bash ../../examples/webphone/setup.sh
