#!/usr/bin/env bash
# The newcomer's first command: builds lockvault, starts a private throwaway PostgreSQL
# (.pgdata/, unix socket only), and shows lockvault working against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> building lockvault"
swift build --product lockvault 2>&1 | tail -1
bin=$(swift build --show-bin-path)/lockvault

echo "==> starting a private PostgreSQL cluster (scripts/pg-cluster.sh; stop it with: scripts/pg-cluster.sh stop)"
scripts/pg-cluster.sh start
eval "$(scripts/pg-cluster.sh env)"

echo "==> lockvault ping"
"$bin" ping
