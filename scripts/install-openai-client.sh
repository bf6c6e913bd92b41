#!/usr/bin/env bash
# Installs the official `openai` and `anthropic` Python clients (pinned) in a virtualenv under ${FLEET_CACHE:-$HOME/.cache/fleet},
# for the end-to-end tests that talk to the gateway as OpenAI and Anthropic clients would. Idempotent; prints the
# virtualenv's python as its last line.
set -euo pipefail

OPENAI_VERSION="${OPENAI_VERSION:-3.57.0}"
ANTHROPIC_VERSION="${ANTHROPIC_VERSION:-2.14.0}"
CACHE="${FLEET_CACHE:-$HOME/.cache/fleet}"
VENV="$CACHE/venv-openai-$OPENAI_VERSION-anthropic-$ANTHROPIC_VERSION"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import openai, anthropic" 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi
echo "[install-openai-client] installing openai==$OPENAI_VERSION and anthropic==$ANTHROPIC_VERSION into $VENV" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION" "anthropic==$ANTHROPIC_VERSION" >&2
echo "$VENV/bin/python"
