#!/usr/bin/env bash
# Start a single-node Ray head for tradeplane: loopback only, token auth on, workers not niced.
set -euo pipefail
PORT="${RAY_PORT:-6379}"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_worker_niceness=0
export RAY_USAGE_STATS_ENABLED=0
exec ray start --head --port="$PORT" --node-ip-address=127.0.0.1 \
  --include-dashboard=true --dashboard-host=127.0.0.1 --disable-usage-stats "$@"
