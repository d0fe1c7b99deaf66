"""The ``[telemetry]`` section and the OpenTelemetry environment variables that override it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradeplane.config.loading import ConfigError, load_config
from tradeplane.config.telemetry import TelemetryConfig

BASE = '[deployment]\nname = "t"\n[[strategies]]\nname = "a"\npath = "s.py"\nclass_name = "A"\n'


def write_config(folder: Path, telemetry: str = "") -> Path:
    """A minimal valid config (one strategy file) with ``telemetry`` as its [telemetry] body."""
    (folder / "s.py").write_text("class A:\n    pass\n")
    f = folder / "c.toml"
    f.write_text(BASE + (f"[telemetry]\n{telemetry}\n" if telemetry else ""))
    return f


def load(folder: Path, telemetry: str = "", **env: str) -> TelemetryConfig:
    return load_config(write_config(folder, telemetry), env=env).telemetry


# -- defaults ------------------------------------------------------------------------------------


def test_defaults_when_no_section_then_no_exporter_full_sampling_metrics_on(
    tmp_path: Path,
) -> None:
    t = load(tmp_path)

    assert t == TelemetryConfig()
    assert t.traces_exporter == "none"
    assert t.otlp_endpoint is None
    assert t.sampling_ratio == 1.0
    assert t.service_name == "tradeplane"
    assert t.export_timeout_s == 2.0
    assert t.export_interval_s == 0.25
    assert t.export_batch_spans == 512
    assert t.max_queue_spans == 20_000
    assert t.metrics_port == 9464
    assert t.metrics_host == "127.0.0.1"
    assert t.enabled
    assert t.resolved_endpoint() == ""


def test_enabled_when_no_exporter_and_no_metrics_port_then_false() -> None:
    assert not TelemetryConfig(metrics_port=None).enabled
    assert TelemetryConfig(metrics_port=None, traces_exporter="console").enabled


def test_every_field_has_a_docstring() -> None:
    for name, field in TelemetryConfig.model_fields.items():
        assert field.description, f"TelemetryConfig.{name} has no docstring"


# -- resolved_endpoint ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exporter", "endpoint", "expected"),
    [
        ("otlp-grpc", None, "http://127.0.0.1:4317"),
        ("otlp-http", None, "http://127.0.0.1:4318/v1/traces"),
        ("otlp-grpc", "http://collector:4317", "http://collector:4317"),
        ("otlp-grpc", "https://collector:4317/", "https://collector:4317"),
        ("otlp-http", "http://collector:4318", "http://collector:4318/v1/traces"),
        ("otlp-http", "http://collector:4318/", "http://collector:4318/v1/traces"),
        ("otlp-http", "https://c.example/otlp", "https://c.example/otlp/v1/traces"),
        ("console", "http://collector:4318", ""),
        ("none", "http://collector:4318", ""),
    ],
)
def test_resolved_endpoint_when_exporter_and_url_given_then_collector_url(
    exporter: Any, endpoint: str | None, expected: str
) -> None:
    cfg = TelemetryConfig(traces_exporter=exporter, otlp_endpoint=endpoint)

    assert cfg.resolved_endpoint() == expected


# -- bad values fail at load, naming the field ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('otlp_endpoint = "collector:4317"', "telemetry.otlp_endpoint"),
        ('otlp_endpoint = "ftp://collector:4317"', "telemetry.otlp_endpoint"),
        ('otlp_endpoint = "http://"', "telemetry.otlp_endpoint"),
        ("sampling_ratio = 1.5", "telemetry.sampling_ratio"),
        ("sampling_ratio = -0.1", "telemetry.sampling_ratio"),
        ("sampling_ratio = nan", "telemetry.sampling_ratio"),
        ('traces_exporter = "zipkin"', "telemetry.traces_exporter"),
        ('traces_exporter = "otlp"', "telemetry.traces_exporter"),
        ('service_name = ""', "telemetry.service_name"),
        ("export_timeout_s = 0", "telemetry.export_timeout_s"),
        ("export_batch_spans = 0", "telemetry.export_batch_spans"),
        ("metrics_port = 70000", "telemetry.metrics_port"),
        ("sample_ratio = 0.5", "telemetry.sample_ratio"),
    ],
)
def test_bad_value_in_file_then_load_fails_naming_the_field(
    tmp_path: Path, body: str, field: str
) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load(tmp_path, body)


def test_values_in_file_then_loaded(tmp_path: Path) -> None:
    t = load(
        tmp_path,
        'traces_exporter = "otlp-http"\notlp_endpoint = "http://jaeger:4318/"\n'
        'sampling_ratio = 0.25\nservice_name = "paper"\nmetrics_port = 0',
    )

    assert t.traces_exporter == "otlp-http"
    assert t.otlp_endpoint == "http://jaeger:4318"
    assert t.resolved_endpoint() == "http://jaeger:4318/v1/traces"
    assert t.sampling_ratio == 0.25
    assert t.service_name == "paper"
    assert t.metrics_port == 0


# -- environment overrides -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "exporter"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp-grpc"),
        ({"OTEL_TRACES_EXPORTER": "OTLP"}, "otlp-grpc"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "otlp-grpc"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "otlp-http",
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none"}, "none"),
        ({"OTEL_TRACES_EXPORTER": "otlp-http"}, "otlp-http"),
    ],
)
def test_env_traces_exporter_then_overrides(
    tmp_path: Path, env: dict[str, str], exporter: str
) -> None:
    assert load(tmp_path, **env).traces_exporter == exporter


def test_env_traces_exporter_none_when_file_sets_otlp_then_none(tmp_path: Path) -> None:
    t = load(tmp_path, 'traces_exporter = "otlp-grpc"', OTEL_TRACES_EXPORTER="none")

    assert t.traces_exporter == "none"


def test_env_protocol_alone_when_file_sets_otlp_then_switches_transport(tmp_path: Path) -> None:
    t = load(tmp_path, 'traces_exporter = "otlp-grpc"', OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")

    assert t.traces_exporter == "otlp-http"


def test_env_protocol_alone_when_file_sets_console_then_console_stays(tmp_path: Path) -> None:
    t = load(tmp_path, 'traces_exporter = "console"', OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")

    assert t.traces_exporter == "console"


def test_env_endpoint_then_overrides_and_resolves(tmp_path: Path) -> None:
    t = load(
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger:4318/",
    )

    assert t.otlp_endpoint == "http://jaeger:4318"
    assert t.resolved_endpoint() == "http://jaeger:4318/v1/traces"


def test_env_service_name_then_overrides(tmp_path: Path) -> None:
    assert load(tmp_path, OTEL_SERVICE_NAME="paper-desk").service_name == "paper-desk"


@pytest.mark.parametrize(
    ("env", "ratio"),
    [
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, 0.25),
        ({"OTEL_TRACES_SAMPLER_ARG": "0"}, 0.0),
        ({"OTEL_TRACES_SAMPLER_ARG": "1"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 0.1),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.2"},
            0.2,
        ),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, 0.0),
    ],
)
def test_env_sampler_then_sampling_ratio(tmp_path: Path, env: dict[str, str], ratio: float) -> None:
    assert load(tmp_path, "sampling_ratio = 0.5", **env).sampling_ratio == ratio


def test_env_when_file_sets_the_same_fields_then_env_wins(tmp_path: Path) -> None:
    t = load(
        tmp_path,
        'traces_exporter = "console"\notlp_endpoint = "http://file:4317"\n'
        'sampling_ratio = 0.5\nservice_name = "from-file"\nmetrics_port = 9999',
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://env:4317",
        OTEL_TRACES_SAMPLER_ARG="0.2",
        OTEL_SERVICE_NAME="from-env",
    )

    assert t.traces_exporter == "otlp-grpc"
    assert t.otlp_endpoint == "http://env:4317"
    assert t.sampling_ratio == 0.2
    assert t.service_name == "from-env"
    assert t.metrics_port == 9999  # no variable for it: the file's value stays


def test_env_when_empty_values_then_file_kept(tmp_path: Path) -> None:
    t = load(
        tmp_path,
        'traces_exporter = "console"\nsampling_ratio = 0.5',
        OTEL_TRACES_EXPORTER="",
        OTEL_TRACES_SAMPLER_ARG=" ",
        OTEL_SERVICE_NAME="",
    )

    assert (t.traces_exporter, t.sampling_ratio, t.service_name) == ("console", 0.5, "tradeplane")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_SAMPLER_ARG": "abc"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "-0.5"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "nan"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_env_bad_value_then_config_error_names_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable) as err:
        load(tmp_path, **env)

    assert "c.toml" in str(err.value)


def test_env_bad_endpoint_then_config_error_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT"):
        load(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="jaeger:4317")
