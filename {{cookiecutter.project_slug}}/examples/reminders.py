"""An example to copy from: reminders that survive a restart.

    /remind 10m stretch   ->  "OK: in 10m, stretch"  ... ten minutes later: "⏰ stretch"

The reminder is a `Later` reply: stored in the inbox with the handler's other
replies (so it is set once, even if the handler runs again), and sent when its
time comes by whichever process runs the bot then. tests/test_examples.py runs
it through a restart.
"""

import re

from {{ cookiecutter.package_name }}.botkit import Bot, Command, Context
from {{ cookiecutter.package_name }}.replies import Later

bot = Bot()
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@bot.command("remind")
def remind(ctx: Context, command: Command) -> str | list[str | Later]:
    found = re.fullmatch(r"(\d+)([smhd])\s+(.+)", command.args)
    if not found:
        return "Try: /remind 10m stretch"
    amount, unit, what = found.groups()
    return [f"OK: in {amount}{unit}, {what}", Later(int(amount) * SECONDS[unit], f"⏰ {what}")]
