"""Settings from the environment, and the answers this project was generated with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MAX_BODY_BYTES, SIGNING_SECRET_ENV, TOLERANCE_SECONDS, WEBHOOK_PATH

from {{ cookiecutter.package_name }} import config
from {{ cookiecutter.package_name }}.config import ConfigError, Settings, project_root

PROJECT = Path(__file__).resolve().parent.parent


def test_generated_settings_are_the_defaults() -> None:
    assert config.WEBHOOK_PATH == WEBHOOK_PATH
    assert config.SIGNING_SECRET_ENV == SIGNING_SECRET_ENV
    settings = Settings.from_env({SIGNING_SECRET_ENV: "s"})
    assert (settings.tolerance_seconds, settings.max_body_bytes) == (
        TOLERANCE_SECONDS,
        MAX_BODY_BYTES,
    )


def test_several_secrets_whitespace_stripped() -> None:
    settings = Settings.from_env({SIGNING_SECRET_ENV: " new\n, old ,, "})
    assert settings.signing_secrets == ("new", "old")


@pytest.mark.parametrize("value", [None, "", " ", ",\n"])
def test_missing_secret_names_the_variable(value: str | None) -> None:
    environ = {} if value is None else {SIGNING_SECRET_ENV: value}
    settings = Settings.from_env(environ)  # `webhooks register` needs none yet
    assert settings.signing_secrets == ()
    with pytest.raises(ConfigError, match=f"^{SIGNING_SECRET_ENV} is not set"):
        settings.require_signing_secrets()


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5"])
def test_bad_numbers_are_refused(value: str) -> None:
    environ = {SIGNING_SECRET_ENV: "s", "SPECTRUM_TIMESTAMP_TOLERANCE": value}
    with pytest.raises(ConfigError, match="SPECTRUM_TIMESTAMP_TOLERANCE must be a positive"):
        Settings.from_env(environ)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run Python in a fresh process, in `cwd`, without this machine's signing secret."""
    env = {k: v for k, v in os.environ.items() if k != SIGNING_SECRET_ENV} | env
    env["PYTHONPATH"] = str(PROJECT)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_dotenv_is_read_but_never_overrides_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{SIGNING_SECRET_ENV}=from-dotenv\n")
    code = "import {{ cookiecutter.package_name }}.config as c; print(c.Settings.from_env().signing_secrets)"
    assert run(["-c", code], tmp_path, {}).stdout == "('from-dotenv',)\n"
    from_env = run(["-c", code], tmp_path, {SIGNING_SECRET_ENV: "from-env"})
    assert from_env.stdout == "('from-env',)\n"


def test_missing_secret_stops_a_command_with_one_line(tmp_path: Path) -> None:
    flask = ["-m", "flask", "--app", "{{ cookiecutter.package_name }}"]
    result = run([*flask, "spectrum", "send-test", "hi"], tmp_path, {})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"Error: {SIGNING_SECRET_ENV} is not set" in result.stderr


def test_retention_must_outlive_the_replay_window() -> None:
    environ = {SIGNING_SECRET_ENV: "s", "SPECTRUM_TIMESTAMP_TOLERANCE": "300"}
    Settings.from_env({**environ, "SPECTRUM_RETENTION_SECONDS": "660"})
    with pytest.raises(
        ConfigError, match=r"SPECTRUM_RETENTION_SECONDS \(659\) must be at least 660"
    ):
        Settings.from_env({**environ, "SPECTRUM_RETENTION_SECONDS": "659"})


def test_repr_masks_every_secret() -> None:
    settings = Settings.from_env(
        {
            SIGNING_SECRET_ENV: "sign-1,sign-2",
            "SPECTRUM_PROJECT_ID": "proj",
            "SPECTRUM_PROJECT_SECRET": "proj-secret",
            "NGROK_AUTHTOKEN": "ngrok-token",
        }
    )
    shown = repr(settings)
    for secret in ("sign-1", "sign-2", "proj-secret", "ngrok-token"):
        assert secret not in shown
    assert "signing_secrets=('***', '***')" in shown and "project_id='proj'" in shown


@pytest.mark.parametrize("value", ["not a url", "file:///etc/passwd", "https://"])
def test_a_bad_api_url_is_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match="SPECTRUM_API_URL must be an http"):
        Settings.from_env({SIGNING_SECRET_ENV: "s", "SPECTRUM_API_URL": value})


def test_commands_in_a_subfolder_use_the_projects_env_and_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".flaskenv").write_text("FLASK_APP=app\n")
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path / "tests")
    assert project_root() == tmp_path
    settings = Settings()
    assert (settings.instance_dir, settings.env_file) == (tmp_path / "instance", tmp_path / ".env")
