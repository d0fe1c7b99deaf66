# Shared by start-head.sh and join-worker.sh (sourced, not run).
#
# TRADEPLANE_RAY_DIR (default ~/.tradeplane/ray, 0700) holds, per node:
#   auth_token        Ray's cluster token (0600); Ray reads it through RAY_AUTH_TOKEN_PATH
#   cluster.versions  the head's tradeplane/Ray/Python versions, which every worker must match
#   env               the variables a shell on this node needs to use the cluster (source it)

OPS_RAY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$OPS_RAY_DIR/../.." && pwd)"
TRADEPLANE_RAY_DIR="${TRADEPLANE_RAY_DIR:-$HOME/.tradeplane/ray}"
TOKEN_FILE="$TRADEPLANE_RAY_DIR/auth_token"
VERSIONS_FILE="$TRADEPLANE_RAY_DIR/cluster.versions"
ENV_FILE="$TRADEPLANE_RAY_DIR/env"

die() {
  echo "error: $*" >&2
  exit 2
}

# The Python that runs tradeplane on this node: TRADEPLANE_PYTHON, else the checkout's .venv.
find_python() {
  PYTHON="${TRADEPLANE_PYTHON:-$REPO_ROOT/.venv/bin/python}"
  [ -x "$PYTHON" ] || die "no Python at $PYTHON (run 'make setup' or set TRADEPLANE_PYTHON)"
  RAY="$(dirname "$PYTHON")/ray"
  [ -x "$RAY" ] || die "no ray command beside $PYTHON"
}

is_ipv4() {
  [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]
}

# An IPv4 address or an interface name (eth1) -> the IPv4 address it names on this machine.
# An address that is not on any local interface is refused: Ray would advertise an address
# nobody can reach it on.
resolve_interface() {
  local want="$1" ip addrs
  if is_ipv4 "$want"; then
    ip="$want"
    # 127.0.0.0/8 is all loopback (lo), though `ip addr` lists only 127.0.0.1: tests use
    # 127.0.0.2 and .3 as two "machines" on one host.
    if [[ ! "$ip" =~ ^127\. ]] && command -v ip >/dev/null; then
      addrs="$(ip -o -4 addr show | awk '{split($4, a, "/"); print a[1]}')"
      grep -qx "$ip" <<<"$addrs" || die "$ip is not an address of this machine (ip -4 addr)"
    fi
  else
    command -v ip >/dev/null || die "cannot resolve interface '$want' without the ip command"
    addrs="$(ip -o -4 addr show dev "$want" 2>/dev/null | awk '{split($4, a, "/"); print a[1]}')" || true
    ip="${addrs%%$'\n'*}"
    [ -n "$ip" ] || die "interface '$want' has no IPv4 address"
  fi
  echo "$ip"
}

make_ray_dir() {
  umask 077
  mkdir -p "$TRADEPLANE_RAY_DIR"
  chmod 700 "$TRADEPLANE_RAY_DIR"
}

# Copies a token into TOKEN_FILE with mode 0600, written through a temp file in the same dir.
install_token() {
  local token="$1" tmp
  [ -n "$token" ] || die "the token is empty"
  tmp="$(mktemp "$TRADEPLANE_RAY_DIR/.auth_token.XXXXXX")"
  chmod 600 "$tmp"
  printf '%s' "$token" >"$tmp"
  mv -f "$tmp" "$TOKEN_FILE"
}

local_versions() {
  "$PYTHON" -m tradeplane.cli.cluster_cmd versions
}

# Every Ray process of this node, and each tradeplane CLI started from `source $ENV_FILE`,
# authenticates with the token file; RAY_AUTH_TOKEN (the value) is dropped so the token does
# not travel in the environment of every worker process.
use_token() {
  [ -s "$TOKEN_FILE" ] || die "no token at $TOKEN_FILE"
  chmod 600 "$TOKEN_FILE"
  unset RAY_AUTH_TOKEN
  export RAY_AUTH_MODE=token
  export RAY_AUTH_TOKEN_PATH="$TOKEN_FILE"
  export RAY_USAGE_STATS_ENABLED=0
  export RAY_worker_niceness=0
}

write_env_file() {
  local node_ip="$1" address="$2" tmp
  tmp="$(mktemp "$TRADEPLANE_RAY_DIR/.env.XXXXXX")"
  {
    echo "export RAY_AUTH_MODE=token"
    echo "export RAY_AUTH_TOKEN_PATH=$TOKEN_FILE"
    echo "export RAY_ADDRESS=$address"
    echo "export RAY_USAGE_STATS_ENABLED=0"
    echo "export RAY_worker_niceness=0"
    if [ "$node_ip" = "127.0.0.1" ]; then
      echo "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"
    else
      echo "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1"
      echo "export TRADEPLANE_RAY_NODE_IP=$node_ip"
    fi
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}
