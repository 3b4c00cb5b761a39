"""Remove the files of options that were not chosen, write .env and .cruft.json, say what's next.

Runs in the user's Python with only cookiecutter installed: standard library only.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# tojson sorts the keys; the record keeps cookiecutter.json's order, as cruft does.
ORDER = json.loads(r"""{{ cookiecutter.keys() | list | tojson }}""")
# cookiecutter's own test for "clone this" (repository.REPO_REGEX), plus abbreviations like gh:.
REMOTE = re.compile(r"((git|hg)\+)?(git|ssh|file|https?):(//)?|\w+@[\w.]+|\w{2,}:")


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


def git(folder, *args):
    """One line of git's output, or None (no git, not a checkout)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def template_folder(answers):
    """The template's folder as an absolute path, or None.

    cookiecutter passes it as given on its command line, which may be relative to
    the user's folder, while this script runs in the new project's folder. (The
    same function is in pre_gen_project.py: hooks cannot import each other.)
    """
    given = answers.get("_repo_dir")
    if not given:
        return None
    candidates = [Path(given)]
    if not candidates[0].is_absolute():
        # cookiecutter runs hooks from inside the template folder (Linux shows it
        # in /proc); a shell's PWD is the folder the user ran cookiecutter in.
        candidates = [Path(f"/proc/{os.getppid()}/cwd").resolve(strict=False)]
        if os.environ.get("PWD"):
            candidates.append(Path(os.environ["PWD"], given))
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file():
            return candidate.resolve()
    return None


def cruft_record(answers):
    """The .cruft.json that `cruft create` would have written, or None.

    Only a git checkout of the template has a commit that `cruft update` can start
    from. The answers are the public ones (no secret is ever asked for), plus the
    two private keys cruft adds; the template's own private keys are read again
    from cookiecutter.json on every update, so they are left out.
    """
    folder = template_folder(answers)
    top = folder and git(folder, "rev-parse", "--show-toplevel")
    commit = top and git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    top = Path(top).resolve()
    # A template cookiecutter cloned is updated from where it came from; a local
    # checkout from its folder, as `cruft create` records a local path.
    remote = REMOTE.match(answers.get("_template") or "")
    template = (remote and git(top, "remote", "get-url", "origin")) or str(top)
    directory = folder.relative_to(top).as_posix()
    context = {key: answers[key] for key in ORDER if key in answers and key[0] != "_"}
    context |= {"_template": template, "_commit": commit}
    return {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None if directory == "." else directory,
    }


def write_cruft_record(root, answers):
    """Record the template and answers the way cruft does, so `cruft update` works.

    Returns what to tell the user.
    """
    if "_commit" in answers:
        return None  # cruft is generating, and writes its own record
    record = cruft_record(answers)
    if record is None:
        return "The template is not a git checkout: `cruft link` can record it later."
    text = json.dumps(record, ensure_ascii=False, indent=2, separators=(",", ": "))
    (root / ".cruft.json").write_text(text + "\n", encoding="utf-8")
    return "The template commit and the answers are in .cruft.json, for `cruft update`."


def next_steps(answers, record_note):
    slug, package = answers["project_slug"], answers["package_name"]
    lines = [
        f"Created {slug}/ with a development signing secret in {slug}/.env",
        "Next:",
        f"  cd {slug}",
        "  make demo        # install, start under gunicorn, send a signed test delivery",
        "  make test        # run every test",
        f"Then edit {package}/bot.py, with the app and the playground running:",
        "  make dev         # restarts on save",
        "  make playground  # chat with it at http://127.0.0.1:8025 (or make chat)",
        "  make test-bot    # your bot's tests. README.md has the rest.",
    ]
    if answers["inbox"] == "redis":
        lines += [
            "Messages wait in Redis: the app and `make worker` need a Redis server",
            "(127.0.0.1:6379, or REDIS_URL in .env). `make test` starts its own",
            "redis-server, so install it (e.g. apt install redis-server).",
        ]
    if answers["reply_bridge"] == "spectrum-ts":
        lines.append("Replies go through Node 22 (20 runs the bridge; Telegram and Slack need 22).")
    if record_note:
        lines.append(record_note)
    return "\n" + "\n".join(lines) + "\n"


def main():
    root = Path.cwd()
    remove_unchosen(root, ANSWERS)
    write_env(root, ANSWERS)
    note = write_cruft_record(root, ANSWERS)
    print(next_steps(ANSWERS, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
