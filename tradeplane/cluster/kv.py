"""Run records in Ray's key-value store (GCS): they outlive every tradeplane process and are
readable from any node of the cluster, so the CLI on a node without the state dir can say
which node holds it, and a journal restarted anywhere can be checked against its identity."""

from __future__ import annotations

import json
import time
from typing import Any

from ray.experimental import internal_kv

from tradeplane.core.run_record import RunRecord

KV_NAMESPACE = "tradeplane"


def _key(deployment: str) -> str:
    return f"run/{deployment}"


def put_run(record: RunRecord) -> None:
    internal_kv._internal_kv_put(
        _key(record.deployment),
        json.dumps(record.to_dict(), sort_keys=True),
        overwrite=True,
        namespace=KV_NAMESPACE,
    )


def get_run(deployment: str) -> RunRecord | None:
    raw = internal_kv._internal_kv_get(_key(deployment), namespace=KV_NAMESPACE)
    if raw is None:
        return None
    return RunRecord.from_dict(json.loads(raw))


def update_run(deployment: str, run_id: str, **changes: Any) -> RunRecord:
    """Change fields of ``run_id``'s record (a record of another run is replaced by a new one
    for this run: a run never inherits another's journal identity or epoch)."""
    record = get_run(deployment)
    if record is None or record.run_id != run_id:
        record = RunRecord(deployment, run_id, "", "", "", "")
    record = record.with_(**changes, updated_ts=time.time())
    put_run(record)
    return record


def delete_run(deployment: str) -> None:
    internal_kv._internal_kv_del(_key(deployment), namespace=KV_NAMESPACE)
