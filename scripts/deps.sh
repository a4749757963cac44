#!/usr/bin/env bash
# Installs the Debian packages ans needs, only those that are missing. Needs root (or sudo) when it installs.
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev xtensor-dev catch2 libbenchmark-dev python3 python3-numpy)
# scripts/fuzz.sh and scripts/tsan.sh add clang-14 and libomp-14-dev (libFuzzer, ThreadSanitizer with Archer)
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" > /dev/null || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
