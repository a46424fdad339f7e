#!/usr/bin/env bash
# Bundles JsSIP for the webphone page into build/jssip.min.js (npm's jssip ships no dist/
# since 3.13, so esbuild makes the browser build). Idempotent; needs node and npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# One at a time (parallel test processes, a user running it meanwhile).
exec 9>.setup.lock
flock 9
if [[ ! -d node_modules/jssip || ! -d node_modules/esbuild ]]; then
    npm install --no-audit --no-fund --loglevel=error
fi
if [[ ! -f build/jssip.min.js ]]; then
    mkdir -p build
    node_modules/.bin/esbuild node_modules/jssip/lib/JsSIP.js --bundle --minify --format=iife \
        --global-name=JsSIP --platform=browser --target=es2017 --log-level=warning \
        --outfile=build/jssip.min.js
fi
