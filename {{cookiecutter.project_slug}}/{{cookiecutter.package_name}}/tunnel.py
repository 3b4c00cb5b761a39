"""`flask spectrum tunnel`: the local loop in one command, for development only.

Opens an HTTPS tunnel to the app's port with ngrok, registers
`<tunnel URL><webhook path>` with Spectrum, saves the signing secret it returns,
starts the app (or uses the one already running), and on Ctrl-C, SIGTERM or any
failure undoes what it did, in reverse order: stops the app it started, deletes
the webhook it registered, closes the tunnel.

The tunnel is the `ngrok` agent SDK (`pip install ngrok`): the agent is compiled
into the wheel, so nothing is downloaded at run time. It is imported only when a
tunnel opens; the app itself never imports it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import click

from .config import SIGNING_SECRET_ENV, WEBHOOK_PATH
from .envfile import KnownWebhooks, digest, drop_secret, read_secrets, save_registration
from .management import DEFAULT_API_URL, APIError, ManagementAPI, Webhook

TOKEN_ENV = "NGROK_AUTHTOKEN"
# Names people often use by mistake; ngrok reads only TOKEN_ENV.
MISNAMED_TOKEN_ENVS = ("NGROK_AUTH_TOKEN", "NGROK_TOKEN")


class TunnelError(click.ClickException):
    """Something the user can fix, said in one line."""


class Tunnel(Protocol):
    def open(self, port: int) -> str:
        """Start forwarding to 127.0.0.1:port; return the public https:// URL."""
        ...

    def close(self) -> None: ...


class NgrokTunnel:
    def __init__(self, authtoken: str, domain: str | None = None) -> None:
        self.authtoken = authtoken
        self.domain = domain  # a static domain keeps the URL (and the webhook) across runs
        self.url: str | None = None

    def open(self, port: int) -> str:
        import ngrok  # a development dependency, needed only here

        options = {"authtoken": self.authtoken}
        if self.domain:
            options["domain"] = self.domain
        try:
            listener = ngrok.forward(f"127.0.0.1:{port}", **options)
        except Exception as exc:  # the SDK raises ValueError with a tuple of reasons
            reasons = exc.args if exc.args else (type(exc).__name__,)
            raise TunnelError(
                f"ngrok could not open a tunnel: {': '.join(map(str, reasons))}"
            ) from None
        self.url = listener.url()
        return self.url

    def close(self) -> None:
        if self.url is not None:
            import ngrok

            ngrok.disconnect(self.url)
            self.url = None


def ngrok_from_env(environ: dict[str, str] | os._Environ[str]) -> NgrokTunnel:
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        misnamed = next((name for name in MISNAMED_TOKEN_ENVS if environ.get(name)), None)
        hint = f" (found {misnamed}: ngrok reads {TOKEN_ENV})" if misnamed else ""
        raise TunnelError(
            f"{TOKEN_ENV} is not set{hint}: copy it from "
            "https://dashboard.ngrok.com/get-started/your-authtoken into .env, "
            "or pass --url https://... to use another tunnel."
        )
    return NgrokTunnel(token, environ.get("NGROK_DOMAIN", "").strip() or None)


# -- the app -----------------------------------------------------------------


def app_answers(port: int) -> bool:
    """True if this app is serving on the port (its /healthz answers)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class AppProcess:
    """The app under gunicorn, as `make run` starts it, with extra environment."""

    def __init__(self, port: int, start_timeout: float = 30.0) -> None:
        self.port = port
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "2"]
        # Its own session: Ctrl-C reaches only this command, which stops the app
        # gracefully (SIGTERM, letting it finish its messages) as its first clean-up step.
        self.process = subprocess.Popen(
            command, env={**env, "PORT": str(self.port)}, start_new_session=True
        )
        deadline = time.monotonic() + self.start_timeout
        while not app_answers(self.port):
            if self.process.poll() is not None:
                raise TunnelError(
                    f"the app did not start (gunicorn exited with code {self.process.returncode}; "
                    "its error is above)."
                )
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"the app did not answer on port {self.port} within {self.start_timeout:g}s."
                )
            time.sleep(0.2)

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)  # gunicorn's graceful timeout, plus a little
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the loop ----------------------------------------------------------------


def register_replacing(
    api: ManagementAPI, url: str, known: KnownWebhooks, secrets: list[str]
) -> tuple[Webhook, bool]:
    """Register `url`; on 409, take over the earlier registration of that URL.

    Returns the webhook and whether it is new. A record whose secret is already in
    `.env` (a run that could not clean up, with a static domain) is reused as it
    is; one whose secret we do not hold is deleted and the URL registered again.
    """
    try:
        return api.register(url), True
    except APIError as exc:
        if exc.status != 409:
            raise
    for webhook in api.list():
        if webhook.url != url:
            continue
        entry = known.get(webhook.id)
        if entry and entry["secret_sha256"] in {digest(s) for s in secrets}:
            return webhook, False
        api.delete(webhook.id)
        click.echo(f"deleted an earlier registration of {url} whose secret is not in .env")
    return api.register(url), True


def curl_command(url: str) -> str:
    api = f"{DEFAULT_API_URL}/projects/$SPECTRUM_PROJECT_ID/webhooks/"
    body = shlex.quote(json.dumps({"webhookUrl": url}))
    return (
        f'curl -sS -u "$SPECTRUM_PROJECT_ID:$SPECTRUM_PROJECT_SECRET" '
        f"-H 'Content-Type: application/json' -d {body} {api}"
    )


@contextlib.contextmanager
def undo(what: str, action: Callable[[], object]) -> Iterator[None]:
    """Run `action` on the way out, whatever happened; a failure there is one line."""
    try:
        yield
    finally:
        try:
            action()
        except Exception as exc:  # keep undoing the rest
            click.echo(f"could not {what}: {exc}", err=True)


def run_loop(
    *,
    port: int,
    tunnel: Tunnel | None,
    public_url: str | None,
    api: ManagementAPI | None,
    env_path: Path,
    known: KnownWebhooks,
    keep: bool,
    app: AppProcess,
    wait: Callable[[AppProcess], None],
) -> None:
    """Tunnel, register, save, start: each step undone on the way out, in reverse."""
    with contextlib.ExitStack() as stack:
        if tunnel is not None:
            public_url = tunnel.open(port)
            stack.enter_context(undo("close the tunnel", tunnel.close))
        assert public_url is not None
        webhook_url = public_url.rstrip("/") + WEBHOOK_PATH

        if api is None:
            click.echo(f"tunnel open: {webhook_url}")
            click.echo("SPECTRUM_PROJECT_ID/SECRET are not set, so register it yourself:")
            click.echo(f"  {curl_command(webhook_url)}")
            click.echo(f"  and put the signingSecret it returns first in {SIGNING_SECRET_ENV}.")
        else:
            secrets = read_secrets(env_path, SIGNING_SECRET_ENV)
            webhook, new = register_replacing(api, webhook_url, known, secrets)
            if new:
                assert webhook.signing_secret is not None
                save_registration(
                    env_path,
                    SIGNING_SECRET_ENV,
                    known,
                    webhook.id,
                    webhook_url,
                    webhook.signing_secret,
                )
            if not keep:
                stack.enter_context(
                    undo(
                        f"delete webhook {webhook.id}",
                        lambda: delete(api, known, env_path, webhook),
                    )
                )
            click.echo(f"registered {webhook.id}  {webhook_url}")

        if app_answers(port):
            click.echo(
                f"using the app already running on port {port}"
                + (": restart it to load the new secret" if api else "")
            )
        elif port_taken(port):
            raise TunnelError(
                f"port {port} is taken by something that is not this app: use --port."
            )
        else:
            env = dict(os.environ)
            secrets = read_secrets(env_path, SIGNING_SECRET_ENV)
            if secrets:  # .env never overrides the environment; the new secret must win
                env[SIGNING_SECRET_ENV] = ",".join(secrets)
            stack.enter_context(undo("stop the app", app.stop))
            app.start(env)

        registered = "Spectrum delivers to" if api else "once registered, Spectrum delivers to"
        click.echo(f"\n{registered} {webhook_url}")
        click.echo("send a message to your Spectrum number; Ctrl-C stops and cleans up")
        wait(app)


def delete(api: ManagementAPI, known: KnownWebhooks, env_path: Path, webhook: Webhook) -> None:
    """Delete the webhook and drop its secret, so `.env` does not grow by one each run."""
    api.delete(webhook.id)
    entry = known.forget(webhook.id)
    if entry and drop_secret(env_path, SIGNING_SECRET_ENV, entry["secret_sha256"]):
        click.echo(f"deleted webhook {webhook.id} and dropped its secret from .env")
    else:
        click.echo(f"deleted webhook {webhook.id}")


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def wait_for_stop(app: AppProcess) -> None:
    """Until Ctrl-C or SIGTERM, or until the app we started exits."""
    while not app.exited():
        time.sleep(0.2)
    raise TunnelError(f"the app exited (code {app.process.returncode if app.process else '?'}).")


@click.command("tunnel")
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", "8000")),
    show_default="$PORT or 8000",
    help="Where the app listens (started if not running).",
)
@click.option(
    "--url", "public_url", help="Use this public https:// URL (any other tunnel) instead of ngrok."
)
@click.option("--keep", is_flag=True, help="Leave the webhook registered on exit.")
def tunnel(port: int, public_url: str | None, keep: bool) -> None:
    """Open an HTTPS tunnel, register it with Spectrum, run the app; clean up on exit."""
    from .cli import env_path, known_webhooks, management_api, project_credentials

    if public_url is not None and not public_url.startswith("https://"):
        raise TunnelError(f"Spectrum only delivers to public https:// URLs, not {public_url}")
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        run_loop(
            port=port,
            tunnel=None if public_url else ngrok_from_env(os.environ),
            public_url=public_url,
            api=management_api() if project_credentials() else None,
            env_path=env_path(),
            known=known_webhooks(),
            keep=keep,
            app=AppProcess(port),
            wait=wait_for_stop,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
