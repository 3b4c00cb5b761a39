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
from typing import Protocol

import click
from flask.cli import with_appcontext

from .config import DEFAULT_API_URL, NGROK_TOKEN_ENV, SIGNING_SECRET_ENV, WEBHOOK_PATH, Settings
from .management import APIError, ManagementAPI, Webhook
from .registrations import Registrations, management_api, require_https
from .runtime import runtime


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

        address = f"127.0.0.1:{port}"
        try:
            if self.domain:
                listener = ngrok.forward(address, authtoken=self.authtoken, domain=self.domain)
            else:
                listener = ngrok.forward(address, authtoken=self.authtoken)
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


def ngrok_from_settings(settings: Settings) -> NgrokTunnel:
    if not settings.ngrok_authtoken:
        misnamed = settings.ngrok_misnamed_token
        hint = f" (found {misnamed}: ngrok reads {NGROK_TOKEN_ENV})" if misnamed else ""
        raise TunnelError(
            f"{NGROK_TOKEN_ENV} is not set{hint}: copy it from "
            "https://dashboard.ngrok.com/get-started/your-authtoken into .env, "
            "or pass --url https://... to use another tunnel."
        )
    return NgrokTunnel(settings.ngrok_authtoken, settings.ngrok_domain or None)


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
    registrations: Registrations,
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
            webhook, _ = registrations.register_replacing(api, webhook_url)
            if not keep:
                stack.enter_context(
                    undo(
                        f"delete webhook {webhook.id}",
                        lambda: delete(api, registrations, webhook),
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
            secrets = registrations.secrets()
            if secrets:  # .env never overrides the environment; the new secret must win
                env[SIGNING_SECRET_ENV] = ",".join(secrets)
            stack.enter_context(undo("stop the app", app.stop))
            app.start(env)

        registered = "Spectrum delivers to" if api else "once registered, Spectrum delivers to"
        click.echo(f"\n{registered} {webhook_url}")
        click.echo("send a message to your Spectrum number; Ctrl-C stops and cleans up")
        wait(app)


def delete(api: ManagementAPI, registrations: Registrations, webhook: Webhook) -> None:
    """Delete the webhook and drop its secret, so `.env` does not grow by one each run."""
    if registrations.delete(api, webhook.id):
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
    default=None,
    show_default="$PORT or 8000",
    help="Where the app listens (started if not running).",
)
@click.option(
    "--url", "public_url", help="Use this public https:// URL (any other tunnel) instead of ngrok."
)
@click.option("--keep", is_flag=True, help="Leave the webhook registered on exit.")
@with_appcontext
def tunnel(port: int | None, public_url: str | None, keep: bool) -> None:
    """Open an HTTPS tunnel, register it with Spectrum, run the app; clean up on exit."""
    settings = runtime().settings
    if public_url is not None:
        require_https(public_url)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        run_loop(
            port=port or settings.port,
            tunnel=None if public_url else ngrok_from_settings(settings),
            public_url=public_url,
            api=management_api(settings) if settings.has_project_credentials else None,
            registrations=Registrations.from_settings(settings),
            keep=keep,
            app=AppProcess(port or settings.port),
            wait=wait_for_stop,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
