#!/usr/bin/env bash
# Installs the system packages fleet builds with (Debian/Ubuntu): libcurl's headers for the upstream client,
# pkg-config to find them, the C++ toolchain and cmake that scripts/install-llama-server.sh needs; with --test
# (scripts/test.sh) also Debian's chromium, in which the dashboard test renders the page headless, and dnsmasq, the
# DNS server the discovery tests start on a high port.
# Idempotent: packages already installed are not touched, and apt is not called at all when none is missing.
set -euo pipefail

packages=(libcurl4-openssl-dev pkg-config cmake g++ make util-linux)
if [ "${1:-}" = "--test" ]; then packages+=(chromium dnsmasq-base); fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# python3 and pip may come from elsewhere (pyenv, a venv): ask apt only when there is none.
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3 python3-pip)
# Debian's python3 keeps venv (ensurepip) in its own package; the openai client is installed in a venv.
python3 -c "import ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "[install-deps] installing with apt: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
