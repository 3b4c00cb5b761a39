"""Remove the files of options that were not chosen, write a local .env, say what's next.

Runs in the user's Python with only cookiecutter installed: standard library only.
"""

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def optional_files(answers):
    """{(question, answer): [paths]}: the files each optional part brings.

    The table is `_optional_files` in cookiecutter.json, which the template's own
    tests read too. PACKAGE stands for the package name.
    """
    table = {}
    for key, paths in answers["_optional_files"].items():
        field, value = key.split("=", 1)
        table[field, value] = [p.replace("PACKAGE", answers["package_name"], 1) for p in paths]
    return table


def remove_unchosen(root, answers):
    for (field, value), paths in optional_files(answers).items():
        if answers[field] == value:
            continue
        for relative in paths:
            path = root / relative
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def write_env(root, answers):
    """A fresh development secret, so the bot can sign and verify its own test deliveries.

    It is generated here rather than asked for: cookiecutter writes every answer
    in plain text to its replay file.
    """
    env = root / ".env"
    if env.exists():
        return
    lines = [
        "# Local settings; never commit this file.",
        "# A development signing secret generated for this project. Replace it with the",
        "# secret Spectrum returns when you register the webhook.",
        f"{answers['signing_secret_env']}={secrets.token_hex(32)}",
        "",
    ]
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))


def next_steps(answers):
    slug, package = answers["project_slug"], answers["package_name"]
    lines = [
        f"Created {slug}/ with a development signing secret in {slug}/.env",
        "Next:",
        f"  cd {slug}",
        "  make demo    # install, start under gunicorn, send a signed test delivery",
        "  make test    # run the tests",
        f"Then edit {package}/bot.py. README.md has the rest.",
    ]
    if answers["inbox"] == "redis":
        lines += [
            "Messages wait in Redis: the app and `make worker` need a Redis server",
            "(127.0.0.1:6379, or REDIS_URL in .env). `make test` starts its own",
            "redis-server, so install it (e.g. apt install redis-server).",
        ]
    if answers["reply_bridge"] == "spectrum-ts":
        lines.append("Replies go through Node 22 (20 runs the bridge; Telegram and Slack need 22).")
    return "\n" + "\n".join(lines) + "\n"


def main():
    root = Path.cwd()
    remove_unchosen(root, ANSWERS)
    write_env(root, ANSWERS)
    print(next_steps(ANSWERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
