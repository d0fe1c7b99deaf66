#!/usr/bin/env bash
# Start the Ray head for tradeplane, with token authentication required.
#
#   start-head.sh [--interface IP|IFACE] [--port N] [-- extra `ray start` args]
#
# Without --interface (or TRADEPLANE_RAY_INTERFACE) the head binds 127.0.0.1 only: a single-node
# cluster, nothing reachable from the network. With one (an address, or an interface name such
# as eth1, resolved to its IPv4 address) other nodes can join it with join-worker.sh.
#
# The token is generated on the first start (TRADEPLANE_RAY_DIR/auth_token, 0600) and reused
# afterwards; hand it, with cluster.versions, to each worker over a channel you trust (see
# ops/runbook.md, "Several nodes"). Extra args go to `ray start`, e.g.
#   -- --num-cpus=0                        keep tradeplane's actors off the head
#   -- --labels=tradeplane-state=1 --resources='{"tradeplane_state": 1}'
set -euo pipefail
source "$(dirname "$0")/common.sh"

INTERFACE="${TRADEPLANE_RAY_INTERFACE:-127.0.0.1}"
PORT="${RAY_PORT:-6379}"
while [ $# -gt 0 ]; do
  case "$1" in
    --interface) INTERFACE="$2"; shift 2 ;;
    --interface=*) INTERFACE="${1#*=}"; shift ;;
    --port) PORT="$2"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

find_python
NODE_IP="$(resolve_interface "$INTERFACE")"
make_ray_dir
if [ ! -s "$TOKEN_FILE" ]; then
  install_token "$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
  echo "generated a new cluster token: $TOKEN_FILE" >&2
fi
use_token
local_versions >"$VERSIONS_FILE"

if [ "$NODE_IP" = "127.0.0.1" ]; then
  # Ray reads this to pick addresses: at 0 it keeps to loopback (its Linux default would
  # advertise the machine's outward address).
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
else
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1
  export TRADEPLANE_RAY_NODE_IP="$NODE_IP"
fi
write_env_file "$NODE_IP" "$NODE_IP:$PORT"

echo "head on $NODE_IP:$PORT; versions: $(cat "$VERSIONS_FILE")" >&2
echo "use the cluster from this node: source $ENV_FILE" >&2
if [ "$NODE_IP" != "127.0.0.1" ]; then
  echo "join a worker: copy $TOKEN_FILE and $VERSIONS_FILE to it, then" >&2
  echo "  ops/ray/join-worker.sh --address $NODE_IP:$PORT --interface IFACE \\" >&2
  echo "      --token-file COPIED_TOKEN --versions COPIED_VERSIONS" >&2
fi
# The dashboard stays on loopback on every node (reach it through an SSH tunnel).
exec "$RAY" start --head --port="$PORT" --node-ip-address="$NODE_IP" \
  --include-dashboard=true --dashboard-host=127.0.0.1 --disable-usage-stats "$@"
