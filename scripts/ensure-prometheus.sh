#!/usr/bin/env bash
# Real promtool and prometheus binaries for the ops tests (alert rules, a real scrape): Debian's
# `prometheus` package, installed only when either binary is missing, through sudo when not root.
# Used by `make tools`, which `make test` (and so CI) runs first.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-prometheus: promtool/prometheus missing and no apt-get here; install Prometheus" \
    "(promtool and prometheus on PATH, or set \$PROMTOOL and \$PROMETHEUS)" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" != "0" ]; then
  as_root=(sudo)
fi
echo "ensure-prometheus: installing Debian's prometheus package (promtool, prometheus)" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null && command -v prometheus >/dev/null
