#!/usr/bin/env bash
# The release step of every deployment path: migrate the database to this version's schema and
# confirm it, before the processes restart on the new code. (The Procfile's `release:`, the
# compose `release` service and the Kubernetes Job run the same `tally db upgrade`.)
#
#   deploy/release.sh [ENV_FILE]        e.g. sudo -u tally deploy/release.sh /etc/tally/tally.env
#   then: systemctl restart tally.target
set -euo pipefail

TALLY=${TALLY:-tally}

# Read NAME=value lines literally, as systemd's EnvironmentFile does: no shell expansion, so
# JSON values such as {"DOGE": 8} and secrets with $ in them arrive intact.
load_env() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    export "${line%%=*}=${line#*=}"
  done <"$1"
}

if [[ $# -gt 1 ]]; then
  echo "usage: $0 [ENV_FILE]" >&2
  exit 2
fi
if [[ $# -eq 1 ]]; then
  load_env "$1"
fi

"$TALLY" db upgrade
"$TALLY" db status
