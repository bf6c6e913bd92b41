#!/usr/bin/env bash
# README command 2: installs whatever is missing (system packages, the llama-server build, the model), builds
# fleet and its tests, and runs every test: unit, process tests on the fake server, and end-to-end tests on the
# real llama-server and model (the official openai Python client included). Extra arguments go to `swift test` (e.g. --filter ConfigTests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
LLAMA_SERVER=$(scripts/install-llama-server.sh | tail -n 1)
MODEL=$(scripts/fetch-model.sh | tail -n 1)
OPENAI_PYTHON=$(scripts/install-openai-client.sh | tail -n 1)

echo "[test] building fleet and its tests" >&2
# The modules are layers: a target that imports one it does not list in Package.swift is an error, not luck.
swift build --build-tests --explicit-target-dependency-import-check error

export FLEET_LLAMA_SERVER="$LLAMA_SERVER" FLEET_TEST_MODEL="$MODEL" FLEET_OPENAI_PYTHON="$OPENAI_PYTHON"
if [ "$#" -gt 0 ]; then
  echo "[test] running swift test $* (llama-server: $LLAMA_SERVER, model: $MODEL)" >&2
  swift test --skip-build "$@"
  exit
fi
# Two runs: the real model's llama-servers take both cores of a small machine, and the fake-server tests that
# measure timeouts and queues beside them would starve. The end-to-end tests run alone, after the rest.
echo "[test] running every test but the end-to-end ones" >&2
swift test --skip-build --skip EndToEndTests
echo "[test] running the end-to-end tests (llama-server: $LLAMA_SERVER, model: $MODEL)" >&2
swift test --skip-build --filter EndToEndTests
