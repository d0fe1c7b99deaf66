"""The ``[alerts]`` section: an optional webhook whose URL is a secret (it may carry a token),
so it is never shown whole: not in the config's repr or dump, not in a validation error, not in
what status shows."""

from __future__ import annotations

import pytest

from tradeplane.config.alerts import AlertsConfig, display_url, url_secrets
from tradeplane.config.loading import ConfigError, parse_config, secret_values

TOKEN = "s3cr3t-T0KEN-xyz"
URL = f"https://hooks.example.com/services/{TOKEN}?key={TOKEN}"


def minimal(**over: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "deployment": {"name": "t"},
        "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
    }
    cfg.update(over)
    return cfg


def test_no_alerts_section_then_no_webhook() -> None:
    assert parse_config(minimal()).alerts.url() is None


def test_webhook_url_then_kept_but_masked_in_repr_and_dumps_and_registered_as_a_secret() -> None:
    cfg = parse_config(minimal(alerts={"webhook_url": URL}))
    assert cfg.alerts.url() == URL
    assert TOKEN not in repr(cfg) and TOKEN not in cfg.model_dump_json()
    assert URL in secret_values(cfg)


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://hooks.example.com/{TOKEN}",
        f"https:///{TOKEN}",
        f"hooks.example.com/{TOKEN}",
        f"http://hooks.example.com:port{TOKEN}/x",
    ],
)
def test_webhook_url_not_http_then_error_names_the_field_never_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(minimal(alerts={"webhook_url": url}))
    assert "alerts.webhook_url" in str(err.value) and TOKEN not in str(err.value)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_queue_events": 0}, "max_queue_events"),
        ({"retry_first_s": 120, "retry_max_s": 60}, "retry_first_s"),
        ({"webhook": "x"}, "webhook"),
    ],
)
def test_alerts_bad_setting_then_error_names_it(over: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config(minimal(alerts=over))


def test_every_alerts_field_docstring_states_its_default() -> None:
    for name, field in AlertsConfig.model_fields.items():
        assert "Default" in (field.description or ""), name


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "https://hooks.example.com/***"),
        (f"http://user:{TOKEN}@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://[::1]:9000/hook", "http://[::1]:9000/***"),
        ("https://example.com", "https://example.com/"),
    ],
)
def test_display_url_then_host_and_port_only(url: str, shown: str) -> None:
    assert display_url(url) == shown and TOKEN not in display_url(url)


def test_url_secrets_then_path_query_password_and_query_values() -> None:
    found = url_secrets(f"https://u:{TOKEN}@h.example.com/a/b?key=val-1234&x=1")
    assert found[0].startswith("https://u:")
    assert {"/a/b?key=val-1234&x=1", TOKEN, "val-1234"} <= set(found)
