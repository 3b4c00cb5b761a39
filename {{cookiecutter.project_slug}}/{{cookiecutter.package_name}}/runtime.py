"""What the webhook, the bot's runner and the CLI share, and the one way to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .botkit import Bot
from .config import Settings
from .inbox.contract import Inbox
from .inbox.sqlite_runner import BotThreads


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    inbox: Inbox
    bot: Bot  # the bot this app runs: bot.py's, unless create_app was given another
    # The SQLite inbox's bot threads in this process; None with Redis, where
    # `flask spectrum worker` processes run the bot.
    bot_threads: BotThreads | None


def runtime(app: Flask | None = None) -> Runtime:
    """The runtime of `app`, or of the app handling the current request or command."""
    found = (app or current_app).extensions["spectrum"]
    assert isinstance(found, Runtime)
    return found
