"""tradeplane: a supervised runtime that carries a trading strategy from shadow to paper to live."""

import os as _os
from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

# Ray reads this when it is first imported: at 0 a single-node cluster binds 127.0.0.1 only
# (Ray's default on Linux is every interface), but a worker node also refuses to join. So the
# loopback default holds unless the operator configured a cluster interface: ops/ray/*.sh set
# TRADEPLANE_RAY_NODE_IP to the address the node was started on (a non-loopback one), and an
# explicit RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER (0 or 1) is always left as it is.
_os.environ.setdefault(
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
    "0" if _os.environ.get("TRADEPLANE_RAY_NODE_IP", "").strip() in ("", "127.0.0.1") else "1",
)
# Ray runs workers at nice 15 by default; a trading pipeline must not yield to everything else.
_os.environ.setdefault("RAY_worker_niceness", "0")

from tradeplane.core.model import Bar, Fill, Position, Side
from tradeplane.core.strategy import Strategy, StrategyContext

__all__ = ["Bar", "Fill", "Position", "Side", "Strategy", "StrategyContext"]

try:  # one source of truth: pyproject.toml's version, as installed
    __version__ = _version("tradeplane")
except _NotInstalled:  # a bare source tree on sys.path, never installed
    __version__ = "0+unknown"
