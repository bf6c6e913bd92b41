#!/usr/bin/env bash
# Installs the official `openai` Python client (pinned) in a virtualenv under ${FLEET_CACHE:-$HOME/.cache/fleet},
# for the end-to-end tests that talk to the gateway as an OpenAI client would. Idempotent; prints the
# virtualenv's python as its last line.
set -euo pipefail

OPENAI_VERSION="${OPENAI_VERSION:-3.57.0}"
CACHE="${FLEET_CACHE:-$HOME/.cache/fleet}"
VENV="$CACHE/venv-openai-$OPENAI_VERSION"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import openai" 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi
echo "[install-openai-client] installing openai==$OPENAI_VERSION into $VENV" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION" >&2
echo "$VENV/bin/python"
