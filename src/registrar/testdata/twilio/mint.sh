#!/usr/bin/env bash
# Regenerates the Twilio-helper token fixtures next to this script. Documentation only: CI
# never runs it (it needs the npm and PyPI registries). Nothing from node_modules or the
# virtualenv is kept: both live in a scratch directory that is deleted afterwards.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d /tmp/twilio-fixtures.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT

(cd "$scratch" && npm init -y >/dev/null && npm install --silent twilio@6.2.0)
NODE_PATH="$scratch/node_modules" node "$here/mint.js" "$here"

python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet twilio==9.13.0
"$scratch/venv/bin/python" "$here/mint.py" "$here"
