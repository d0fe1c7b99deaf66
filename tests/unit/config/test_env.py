"""The environment and .env variables as pydantic-settings: credentials load on their own, a bad
value fails naming its variable (never showing a credential), and .env files keep their order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeplane.config.env import CREDENTIAL_ENV, OverrideVars
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.config.settings import Credentials, Overrides

KEY = "AK-0b1e-key"
CONFIG = '[deployment]\nname = "t"\n[[strategies]]\nname = "a"\npath = "s.py"\nclass_name = "A"\n'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A config folder, a separate cwd, and no tradeplane variable in the environment."""
    for var in [*CREDENTIAL_ENV.values(), "IB_PORT", "IB_HOST", "TRADEPLANE_STATE_DIR"]:
        monkeypatch.delenv(var, raising=False)
    config_dir, cwd = tmp_path / "config", tmp_path / "cwd"
    config_dir.mkdir()
    cwd.mkdir()
    (config_dir / "s.py").write_text("class A:\n    pass\n")
    (config_dir / "c.toml").write_text(CONFIG)
    monkeypatch.chdir(cwd)
    yield config_dir


def test_credentials_read_on_their_own_from_dotenv_then_the_environment_wins(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / ".env").write_text(f"TRADEPLANE_API_KEY={KEY}\nTRADEPLANE_ACCOUNT_ID=from-file\n")
    monkeypatch.setenv("TRADEPLANE_ACCOUNT_ID", "from-env")
    creds = Credentials.read(folder).config()
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY
    assert creds.account_id is not None and creds.account_id.get_secret_value() == "from-env"
    assert creds.api_secret is None and creds.passphrase is None
    assert KEY not in repr(creds)


def test_dotenv_in_cwd_wins_over_the_one_beside_the_config(folder: Path) -> None:
    (folder / ".env").write_text("IB_HOST=config-folder\nIB_PORT=4002\n")
    (Path.cwd() / ".env").write_text("IB_HOST=cwd\n")
    read = Overrides.read(folder)
    assert (read.ib_host, read.ib_port) == ("cwd", 4002)


def test_variable_names_are_case_sensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IB_PORT", raising=False)
    monkeypatch.setenv("ib_port", "nonsense")
    assert Overrides.read().ib_port is None


def test_blank_override_is_unset_and_surrounding_blanks_dropped() -> None:
    assert OverrideVars.of({"IB_HOST": "  ", "IB_ACCOUNT": " DU1 "}).by_variable() == {
        "IB_ACCOUNT": "DU1"
    }


def test_bad_override_in_dotenv_then_load_fails_naming_the_variable(folder: Path) -> None:
    (folder / ".env").write_text("IB_CLIENT_ID=seven\n")
    with pytest.raises(ConfigError, match=r"IB_CLIENT_ID: Input should be a valid integer"):
        load_config(folder / "c.toml")


def test_malformed_dotenv_line_then_load_fails_naming_the_line_not_its_value(
    folder: Path,
) -> None:
    (folder / ".env").write_text(f"TRADEPLANE_API_KEY={KEY}\n{KEY}\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE") as caught:
        load_config(folder / "c.toml")
    assert KEY not in str(caught.value)


def test_state_dir_variable_from_dotenv_then_it_overrides_the_file(folder: Path) -> None:
    (folder / ".env").write_text(f"TRADEPLANE_STATE_DIR={folder / 'elsewhere'}\n")
    cfg = load_config(folder / "c.toml")
    assert cfg.deployment.resolved_state_dir() == folder / "elsewhere"
