#!/usr/bin/env bash
# Install a font with Chinese and Japanese glyphs (Debian's fonts-wqy-microhei) when none is installed,
# so PNG exports of CJK text show characters instead of boxes. apt-get runs only when fontconfig finds no font.
set -euo pipefail
if command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh)" ] && [ -n "$(fc-list :lang=ja)" ]; then
  exit 0
fi
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq fonts-wqy-microhei fontconfig >/dev/null
