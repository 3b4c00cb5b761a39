"""The management API client and `flask spectrum webhooks ...`, against a real local server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SIGNING_SECRET_ENV, WEBHOOK_PATH, echo_bot, unused_port
from fake_spectrum import PROJECT_ID, PROJECT_SECRET, FakeSpectrum

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.cli import next_version
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.envfile import add_secret
from {{ cookiecutter.package_name }}.management import APIError, ManagementAPI

URL = f"https://bot.example.com{WEBHOOK_PATH}"


@pytest.fixture
def api(fake: FakeSpectrum) -> ManagementAPI:
    return ManagementAPI(PROJECT_ID, PROJECT_SECRET, base_url=fake.url, timeout=2)


def test_register_list_delete(api: ManagementAPI, fake: FakeSpectrum) -> None:
    webhook = api.register(URL)
    assert len(webhook.signing_secret) == 64
    listed = api.list()
    assert [(w.id, w.url, w.signing_secret) for w in listed] == [(webhook.id, URL, None)]
    api.delete(webhook.id)
    assert api.list() == []
    assert fake.requests[-1] == ("GET", f"/projects/{PROJECT_ID}/webhooks/")
    assert ("DELETE", f"/projects/{PROJECT_ID}/webhooks/{webhook.id}/") in fake.requests


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda api: api.register(URL) and api.register(URL), "is already registered (409)"),
        (
            lambda api: api.register("not a url"),
            "Spectrum rejected not a url (422): Invalid webhookUrl.",
        ),
        (lambda api: api.delete("nope"), "no webhook nope in this project (404)"),
    ],
)
def test_errors_are_one_clear_line(api: ManagementAPI, call, message: str) -> None:
    with pytest.raises(APIError) as error:
        call(api)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_credentials(fake: FakeSpectrum) -> None:
    api = ManagementAPI(PROJECT_ID, "wrong", base_url=fake.url)
    with pytest.raises(APIError, match=r"refused the project credentials \(401\)"):
        api.list()


def test_rate_limit_and_unexpected_answers(api: ManagementAPI, fake: FakeSpectrum) -> None:
    fake.force_status = 429
    with pytest.raises(APIError, match=r"rate limited by Spectrum \(429"):
        api.list()
    fake.force_status = 502
    with pytest.raises(APIError, match=r"unexpected answer from Spectrum \(HTTP 502\): forced"):
        api.list()


def test_slow_answer_times_out(fake: FakeSpectrum) -> None:
    fake.delay = 1.0
    api = ManagementAPI(PROJECT_ID, PROJECT_SECRET, base_url=fake.url, timeout=0.2)
    with pytest.raises(APIError, match=r"no answer from .* within 0.2s"):
        api.list()


def test_connection_refused() -> None:
    api = ManagementAPI(PROJECT_ID, PROJECT_SECRET, base_url=f"http://127.0.0.1:{unused_port()}")
    with pytest.raises(APIError, match=r"cannot reach http://127.0.0.1:\d+ \("):
        api.list()


def test_add_secret_keeps_the_others_first_new(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"# comment\nOTHER=1\n{SIGNING_SECRET_ENV}=old1, old2\n")
    add_secret(env, SIGNING_SECRET_ENV, "new")
    add_secret(env, SIGNING_SECRET_ENV, "new")  # twice: still listed once
    assert env.read_text() == f"# comment\nOTHER=1\n{SIGNING_SECRET_ENV}=new,old1,old2\n"
    assert env.stat().st_mode & 0o777 == 0o600
    missing = tmp_path / "fresh.env"
    add_secret(missing, SIGNING_SECRET_ENV, "s")
    assert missing.read_text() == f"{SIGNING_SECRET_ENV}=s\n"


@pytest.fixture
def cli(fake: FakeSpectrum, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"{SIGNING_SECRET_ENV}=dev-secret\n")
    monkeypatch.setenv("SPECTRUM_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("SPECTRUM_PROJECT_SECRET", PROJECT_SECRET)
    monkeypatch.setenv("SPECTRUM_API_URL", fake.url)

    def invoke(*args: str):
        # As `flask` would: the app's settings read from the environment as it is now.
        environ = {**os.environ, SIGNING_SECRET_ENV: "dev-secret", "REDIS_URL": ""}
        app = create_app(Settings.from_env(environ), bot=echo_bot())
        return app.test_cli_runner().invoke(args=["spectrum", "webhooks", *args])

    return invoke


def test_commands_register_list_delete_and_keep_env_right(cli, fake: FakeSpectrum, tmp_path: Path):
    registered = cli("register", URL)
    assert registered.exit_code == 0, registered.output
    webhook = next(iter(fake.webhooks.values()))
    assert registered.output.startswith(f"registered {webhook['id']}  {URL}\n")
    env = (tmp_path / ".env").read_text()
    assert env == f"{SIGNING_SECRET_ENV}={webhook['signingSecret']},dev-secret\n"

    listed = cli("list")
    assert listed.output == f"{webhook['id']}  {URL}  2026-05-14T19:00:00Z\n"
    deleted = cli("delete", webhook["id"])
    assert deleted.exit_code == 0 and deleted.output.startswith(f"deleted {webhook['id']}\n")
    assert f"its secret is out of {SIGNING_SECRET_ENV}" in deleted.output
    assert cli("list").output == "no webhooks registered\n"
    # It was registered from here, so its secret is known and leaves .env with it.
    assert (tmp_path / ".env").read_text() == f"{SIGNING_SECRET_ENV}=dev-secret\n"
    assert json.loads((tmp_path / "instance" / "webhooks.json").read_text()) == {}


def test_rotation_register_beside_then_delete_the_old(cli, fake: FakeSpectrum, tmp_path: Path):
    cli("register", URL)
    (old,) = fake.webhooks.values()
    rotated = cli("rotate", old["id"])
    assert rotated.exit_code == 0, rotated.output
    new = next(w for w in fake.webhooks.values() if w["id"] != old["id"])
    assert new["webhookUrl"] == URL + "?v=2"
    env = tmp_path / ".env"
    both = f"{SIGNING_SECRET_ENV}={new['signingSecret']},{old['signingSecret']},dev-secret\n"
    assert env.read_text() == both  # the app accepts both once restarted
    step3 = f"3. flask --app {{ cookiecutter.package_name }} spectrum webhooks delete {old['id']}"
    assert step3 in rotated.output

    cli("delete", old["id"])
    assert [w["id"] for w in fake.webhooks.values()] == [new["id"]]
    assert env.read_text() == f"{SIGNING_SECRET_ENV}={new['signingSecret']},dev-secret\n"


def test_deleting_a_webhook_registered_elsewhere_leaves_env_alone(cli, api, tmp_path: Path):
    stranger = api.register(URL)
    deleted = cli("delete", stranger.id)
    assert "this project did not register it, so cannot tell which" in deleted.output
    assert (tmp_path / ".env").read_text() == f"{SIGNING_SECRET_ENV}=dev-secret\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/hook", "https://a.example/hook?v=2"),
        ("https://a.example/hook?v=2", "https://a.example/hook?v=3"),
        ("https://a.example/hook?x=1&v=9", "https://a.example/hook?x=1&v=10"),
    ],
)
def test_next_version(url: str, expected: str) -> None:
    assert next_version(url) == expected


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (("register", "http://bot.example.com/x"), None, "only delivers to public https://"),
        (("register", URL), "twice", "is already registered (409)"),
        (("delete", "nope"), None, "no webhook nope in this project (404)"),
        (("list",), "bad-credentials", "refused the project credentials (401)"),
        (
            ("list",),
            "no-credentials",
            "SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET must be set",
        ),
    ],
)
def test_command_errors_are_one_line(cli, monkeypatch, args, setup, message) -> None:
    if setup == "twice":
        cli(*args)
    if setup == "bad-credentials":
        monkeypatch.setenv("SPECTRUM_PROJECT_SECRET", "wrong")
    if setup == "no-credentials":
        monkeypatch.delenv("SPECTRUM_PROJECT_ID")
    result = cli(*args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert result.output.count("\n") == 1
