from tradeplane.core.run_record import JournalIdentity, RunRecord


def test_run_record_round_trips_through_a_dict() -> None:
    record = RunRecord(
        "demo",
        "r1",
        "running",
        "node-a",
        "10.0.0.2",
        "/srv/tp/demo",
        JournalIdentity("abc", 3, 41),
        {"risk": "node-a"},
        12.5,
    )
    assert RunRecord.from_dict(record.to_dict()) == record


def test_run_record_from_a_newer_release_keeps_what_it_knows() -> None:
    raw = RunRecord("demo", "r1", "running", "n", "ip", "/d").to_dict() | {"later": 1}
    assert RunRecord.from_dict(raw).journal is None
