#!/usr/bin/env bash
# README command 1: installs whatever is missing (system packages, the llama-server build, the model), builds
# fleet in release mode and runs `fleet up` on the repository's fleet.json in the foreground. Ctrl-C stops the
# whole fleet. Extra arguments go to `fleet up` (e.g. --detach).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export FLEET_LLAMA_SERVER="${FLEET_LLAMA_SERVER:-$(scripts/install-llama-server.sh | tail -n 1)}"
scripts/fetch-model.sh >/dev/null

echo "[run] building fleet (release)" >&2
swift build -c release --product fleet
exec .build/release/fleet up --config fleet.json "$@"
