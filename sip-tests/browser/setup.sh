#!/usr/bin/env bash
# Installs the browser tests' npm packages (puppeteer-core drives Debian's chromium, never
# a downloaded browser; JsSIP is the softphone library) and bundles JsSIP for the page
# (npm's jssip ships no dist/ since 3.13). Idempotent; the test runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -d node_modules/jssip || ! -d node_modules/puppeteer-core ]]; then
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error
fi
if [[ ! -f build/jssip.min.js ]]; then
    mkdir -p build
    node_modules/.bin/esbuild node_modules/jssip/lib/JsSIP.js --bundle --minify --format=iife \
        --global-name=JsSIP --platform=browser --target=es2017 --log-level=warning \
        --outfile=build/jssip.min.js
fi
