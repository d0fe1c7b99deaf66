#!/usr/bin/env bash
# Join this machine to a tradeplane Ray cluster as a worker node, with the cluster's token.
#
#   join-worker.sh --address HEAD_IP:PORT --interface IP|IFACE
#                  [--token-file PATH] [--versions FILE] [--check-only] [-- extra `ray start` args]
#
# The token: --token-file PATH (a copy of the head's TRADEPLANE_RAY_DIR/auth_token), or the
# RAY_AUTH_TOKEN variable; it is written to this node's TRADEPLANE_RAY_DIR/auth_token (0600).
# The versions: --versions FILE (a copy of the head's cluster.versions) or
# TRADEPLANE_CLUSTER_VERSIONS (its one line). This node must run the same tradeplane (version
# and source digest), Ray and Python, or it does not join (exit 3). --check-only does every
# check and installs the token, then exits without starting Ray.
# Extra args go to `ray start`, e.g. -- --num-cpus=4 --labels=tradeplane-state=1
set -euo pipefail
source "$(dirname "$0")/common.sh"

ADDRESS="${RAY_ADDRESS:-}"
INTERFACE="${TRADEPLANE_RAY_INTERFACE:-}"
TOKEN_SOURCE=""
EXPECTED="${TRADEPLANE_CLUSTER_VERSIONS:-}"
CHECK_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --address) ADDRESS="$2"; shift 2 ;;
    --address=*) ADDRESS="${1#*=}"; shift ;;
    --interface) INTERFACE="$2"; shift 2 ;;
    --interface=*) INTERFACE="${1#*=}"; shift ;;
    --token-file) TOKEN_SOURCE="$2"; shift 2 ;;
    --token-file=*) TOKEN_SOURCE="${1#*=}"; shift ;;
    --versions) EXPECTED="$(cat "$2")"; shift 2 ;;
    --versions=*) EXPECTED="$(cat "${1#*=}")"; shift ;;
    --check-only) CHECK_ONLY=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

[ -n "$ADDRESS" ] || die "--address HEAD_IP:PORT is required"
[ -n "$INTERFACE" ] || die "--interface IP|IFACE is required (the address other nodes reach this one on)"
[ -n "$EXPECTED" ] || die "the head's versions are required: --versions FILE or TRADEPLANE_CLUSTER_VERSIONS"

find_python
NODE_IP="$(resolve_interface "$INTERFACE")"

FOUND="$(local_versions)"
if [ "$FOUND" != "$EXPECTED" ]; then
  echo "error: this node's versions differ from the head's; not joining" >&2
  echo "  head: $EXPECTED" >&2
  echo "  here: $FOUND" >&2
  exit 3
fi

make_ray_dir
if [ -n "$TOKEN_SOURCE" ]; then
  [ -r "$TOKEN_SOURCE" ] || die "cannot read the token file $TOKEN_SOURCE"
  install_token "$(tr -d '[:space:]' <"$TOKEN_SOURCE")"
elif [ -n "${RAY_AUTH_TOKEN:-}" ]; then
  install_token "$RAY_AUTH_TOKEN"
else
  [ -s "$TOKEN_FILE" ] || die "no token: --token-file PATH or RAY_AUTH_TOKEN (a copy of the head's)"
fi
use_token
printf '%s\n' "$EXPECTED" >"$VERSIONS_FILE"
write_env_file "$NODE_IP" "$ADDRESS"

if [ "$CHECK_ONLY" = 1 ]; then
  echo "check passed: versions match ($FOUND); token at $TOKEN_FILE" >&2
  exit 0
fi

# A worker node is multi-node by definition: Ray refuses to join with the loopback-only flag.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1
export TRADEPLANE_RAY_NODE_IP="$NODE_IP"
echo "joining $ADDRESS as $NODE_IP; versions: $FOUND" >&2
exec "$RAY" start --address="$ADDRESS" --node-ip-address="$NODE_IP" --disable-usage-stats "$@"
