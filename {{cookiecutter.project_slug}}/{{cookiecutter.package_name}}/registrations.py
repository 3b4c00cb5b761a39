"""Registering this app's webhook with Spectrum, and keeping what that gives.

A registration returns the webhook's signing secret once, never again, so it
goes into `.env` at once (first in the list, the old secrets kept, so nothing
in use stops verifying), and the webhook is noted as ours in
`instance/webhooks.json` (see `envfile.KnownWebhooks`). Deleting a webhook
noted there drops exactly its secret again. Used by `flask spectrum webhooks`
and by the tunnel alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from .config import SIGNING_SECRET_ENV, Settings
from .envfile import (
    EnvFileError,
    KnownWebhooks,
    check_env_file,
    digest,
    drop_secret,
    read_secrets,
    save_registration,
)
from .management import APIError, ManagementAPI, Webhook


def management_api(settings: Settings) -> ManagementAPI:
    """The API client with the project's credentials, or a one-line error saying where they go."""
    if not settings.has_project_credentials:
        raise click.ClickException(
            "SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET must be set (in .env or the "
            "environment): `npx @photon-ai/cli projects show` prints them."
        )
    return ManagementAPI(settings.project_id, settings.project_secret, base_url=settings.api_url)


def require_https(url: str) -> None:
    if not url.startswith("https://"):
        raise click.ClickException(f"Spectrum only delivers to public https:// URLs, not {url}")


@dataclass(frozen=True)
class Registrations:
    """This project's side of its webhooks: the secrets in `.env`, and which webhook is ours."""

    env_path: Path
    known: KnownWebhooks

    @classmethod
    def from_settings(cls, settings: Settings) -> Registrations:
        return cls(settings.env_file, KnownWebhooks(settings.known_webhooks_path))

    def secrets(self) -> list[str]:
        return read_secrets(self.env_path, SIGNING_SECRET_ENV)

    def register(self, api: ManagementAPI, url: str) -> Webhook:
        """Register `url` and keep its secret, which Spectrum shows this once.

        A `.env` that cannot take the secret is refused before registering; if
        saving fails all the same, the webhook is deleted again: every delivery to
        it would be refused (401), and Spectrum does not retry those.
        """
        check_env_file(self.env_path, SIGNING_SECRET_ENV)
        webhook = api.register(url)
        try:
            self._save(webhook)
        except EnvFileError as exc:
            try:
                api.delete(webhook.id)
            except APIError as failed:
                raise EnvFileError(
                    f"{exc.message}; webhook {webhook.id} signs with a secret that is now "
                    f"lost and could not be deleted ({failed}): delete it"
                ) from None
            raise EnvFileError(
                f"{exc.message}; so webhook {webhook.id} was deleted again"
            ) from None
        return webhook

    def register_replacing(self, api: ManagementAPI, url: str) -> tuple[Webhook, bool]:
        """Register `url`; on 409, take over the earlier registration of that URL.

        Returns the webhook and whether it is new. A record whose secret is already in
        `.env` (a run that could not clean up, with a static domain) is reused as it
        is; one whose secret we do not hold is deleted and the URL registered again.
        """
        try:
            return self.register(api, url), True
        except APIError as exc:
            if exc.status != 409:
                raise
        held = {digest(s) for s in self.secrets()}
        for webhook in api.list():
            if webhook.url != url:
                continue
            entry = self.known.get(webhook.id)
            if entry and entry["secret_sha256"] in held:
                return webhook, False
            api.delete(webhook.id)
            click.echo(f"deleted an earlier registration of {url} whose secret is not in .env")
        return self.register(api, url), True

    def delete(self, api: ManagementAPI, webhook_id: str) -> bool:
        """Delete the webhook; drop its secret from `.env` if it is ours. True if dropped."""
        if self.known.get(webhook_id) is not None:  # a .env we could not edit: refuse first
            check_env_file(self.env_path, SIGNING_SECRET_ENV)
        api.delete(webhook_id)
        entry = self.known.forget(webhook_id)
        try:
            return entry is not None and drop_secret(
                self.env_path, SIGNING_SECRET_ENV, entry["secret_sha256"]
            )
        except EnvFileError as exc:
            raise EnvFileError(
                f"deleted webhook {webhook_id}, but its secret is still in .env: {exc.message}"
            ) from None

    def _save(self, webhook: Webhook) -> None:
        assert webhook.signing_secret is not None  # ManagementAPI.register insists on it
        save_registration(
            self.env_path,
            SIGNING_SECRET_ENV,
            self.known,
            webhook.id,
            webhook.url,
            webhook.signing_secret,
        )
