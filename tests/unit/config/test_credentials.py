"""Credentials: only from the environment or .env, never the file; never shown once loaded."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeplane.config.loading import (
    CREDENTIAL_ENV,
    ConfigError,
    load_config,
    parse_config,
    secret_values,
)
from tradeplane.config.models import CredentialsConfig
from tradeplane.config.settings import node_credentials, without_credentials

KEY = "AK-7f3c9e1d-key"
SECRET = "zS9x!q#Lr2+wT/secret"
PASSPHRASE = "correct horse battery"
ACCOUNT = "ACC-00991122"

CONFIG = """
[deployment]
name = "creds"
mode = "paper"

[venue]
kind = "sim"
{extra}

[[strategies]]
name = "s"
path = "s.py"
class_name = "S"
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A config folder as cwd, with no credentials in the process environment."""
    for var in CREDENTIAL_ENV.values():
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "s.py").write_text("")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "deploy.toml"
    path.write_text(CONFIG.format(extra=extra))
    return path


def all_env() -> dict[str, str]:
    return {
        "TRADEPLANE_API_KEY": KEY,
        "TRADEPLANE_API_SECRET": SECRET,
        "TRADEPLANE_API_PASSPHRASE": PASSPHRASE,
        "TRADEPLANE_ACCOUNT_ID": ACCOUNT,
    }


def test_credentials_come_from_the_environment(folder: Path) -> None:
    cfg = load_config(write_config(folder), env=all_env())
    creds = cfg.venue.credentials
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY
    assert creds.api_secret is not None and creds.api_secret.get_secret_value() == SECRET
    assert creds.passphrase is not None and creds.passphrase.get_secret_value() == PASSPHRASE
    assert creds.account_id is not None and creds.account_id.get_secret_value() == ACCOUNT
    assert secret_values(cfg) == [KEY, SECRET, PASSPHRASE, ACCOUNT]


def test_credentials_come_from_dotenv_and_the_process_environment_wins(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / ".env").write_text(
        f"TRADEPLANE_API_KEY={KEY}\nexport TRADEPLANE_API_SECRET='{SECRET}'\n"
        "TRADEPLANE_ACCOUNT_ID=from-dotenv\n"
    )
    monkeypatch.setenv("TRADEPLANE_ACCOUNT_ID", ACCOUNT)
    creds = load_config(write_config(folder)).venue.credentials
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY
    assert creds.api_secret is not None and creds.api_secret.get_secret_value() == SECRET
    assert creds.account_id is not None and creds.account_id.get_secret_value() == ACCOUNT
    assert creds.passphrase is None


def test_without_credentials_every_field_is_unset_and_there_is_nothing_to_redact(
    folder: Path,
) -> None:
    cfg = load_config(write_config(folder), env={"TRADEPLANE_API_KEY": ""})
    assert cfg.venue.credentials == CredentialsConfig()
    assert secret_values(cfg) == []


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        (f'[venue.credentials]\napi_key = "{KEY}"', "venue.credentials.api_key"),
        (f'[venue.credentials]\napi_secret = "{SECRET}"', "venue.credentials.api_secret"),
        (f'credentials = {{ account_id = "{ACCOUNT}" }}', "venue.credentials.account_id"),
        (f'[venue.credentials]\ntoken = "{KEY}"', "venue.credentials.token"),
        (f'credentials = "{KEY}"', "venue.credentials"),
    ],
)
def test_a_credential_written_in_the_config_file_is_refused_naming_the_field(
    folder: Path, toml: str, field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(folder, toml), env=all_env())
    message = str(info.value)
    assert f"{field}: credentials come from the environment or .env, never the config file" in (
        message
    )
    assert KEY not in message and SECRET not in message and ACCOUNT not in message


def test_the_refusal_says_which_variable_to_set(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(set TRADEPLANE_API_PASSPHRASE\)"):
        load_config(write_config(folder, f'[venue.credentials]\npassphrase = "{PASSPHRASE}"'))


def test_repr_str_and_dumps_of_a_loaded_config_never_show_a_credential(folder: Path) -> None:
    cfg = load_config(write_config(folder), env=all_env())
    shown = [
        repr(cfg),
        str(cfg),
        cfg.model_dump_json(),
        str(cfg.model_dump()),
        str(cfg.model_dump(mode="json")),
        repr(cfg.venue.credentials),
    ]
    for text in shown:
        for value in (KEY, SECRET, PASSPHRASE, ACCOUNT):
            assert value not in text
    assert "**********" in cfg.model_dump_json()


def test_a_config_shipped_to_another_process_keeps_its_credentials(folder: Path) -> None:
    cfg = load_config(write_config(folder), env=all_env())
    assert secret_values(pickle.loads(pickle.dumps(cfg))) == secret_values(cfg)


def test_a_validation_error_never_carries_a_credential_value(folder: Path) -> None:
    # A value that is not a string: pydantic's own message would print it.
    bad = {
        "deployment": {"name": "t"},
        "venue": {"credentials": {"api_key": 987654321987}},
        "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    assert "venue.credentials.api_key" in str(info.value)
    assert "987654321987" not in str(info.value)


def test_an_error_message_that_quotes_a_credential_masks_it(folder: Path) -> None:
    # The account id pasted where a symbol belongs: the error quotes the bad symbols.
    extra = '[venue.sim]\nsymbols = ["AAA"]\n'
    path = write_config(folder, extra)
    path.write_text(path.read_text() + f'symbols = ["{ACCOUNT}"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=all_env())
    message = str(info.value)
    assert "strategies.s.symbols" in message and "***" in message
    assert ACCOUNT not in message


def test_the_state_dirs_dotenv_is_read_and_the_process_environment_still_wins(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = folder / "state"
    state.mkdir()
    (folder / ".env").write_text(
        f"TRADEPLANE_API_KEY=from-config-folder\nTRADEPLANE_STATE_DIR={state}\n"
    )
    (state / ".env").write_text(f"TRADEPLANE_API_KEY={KEY}\nTRADEPLANE_ACCOUNT_ID=from-state\n")
    monkeypatch.setenv("TRADEPLANE_ACCOUNT_ID", ACCOUNT)
    creds = load_config(write_config(folder)).venue.credentials
    assert creds.api_key is not None and creds.api_key.get_secret_value() == KEY
    assert creds.account_id is not None and creds.account_id.get_secret_value() == ACCOUNT


def test_an_actor_reads_the_credentials_on_its_node_state_dir_over_cwd_over_config_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, cwd, state = folder / "conf", folder / "work", folder / "state"
    for d in (config_dir, cwd, state):
        d.mkdir()
    (config_dir / "s.py").write_text("")
    path = write_config(config_dir)
    path.write_text(path.read_text().replace('mode = "paper"', f'state_dir = "{state}"'))
    (config_dir / ".env").write_text(
        f"TRADEPLANE_API_KEY=config-folder\nTRADEPLANE_API_SECRET=config-folder\n"
        f"TRADEPLANE_API_PASSPHRASE={PASSPHRASE}\n"
    )
    (cwd / ".env").write_text("TRADEPLANE_API_KEY=cwd\nTRADEPLANE_API_SECRET=cwd\n")
    (state / ".env").write_text(f"TRADEPLANE_API_KEY={KEY}\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TRADEPLANE_API_SECRET", SECRET)
    cfg = load_config(path)
    shipped = pickle.loads(pickle.dumps(without_credentials(cfg)))
    assert secret_values(shipped) == []
    monkeypatch.chdir(folder)  # an actor's working directory is not the CLI's
    found = node_credentials(shipped)
    assert secret_values(found.config) == [KEY, SECRET, PASSPHRASE]
    assert found.fields == ["api_key", "api_secret", "passphrase"]
    assert found.sources == (
        str(config_dir / ".env"),
        str(cwd / ".env"),
        str(state / ".env"),
        "environment",
    )
    for value in (KEY, SECRET, PASSPHRASE):
        assert value not in repr(found.summary())


def test_without_a_dotenv_or_variable_on_the_node_an_actor_finds_no_credentials(
    folder: Path,
) -> None:
    cfg = load_config(write_config(folder), env={})
    found = node_credentials(cfg)
    assert found.config == CredentialsConfig() and found.sources == ()
