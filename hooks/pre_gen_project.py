"""Check every answer before anything is written; report all problems at once.

Runs in the user's Python with only cookiecutter installed: standard library only.
The answers are read as JSON data (never spliced into code), so no answer can
change what this script does.
"""

import json
import keyword
import os
import re
import shlex
import sys
import unicodedata
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# tojson sorts the keys; the re-run command lists them in cookiecutter.json's order.
ORDER = json.loads(r"""{{ cookiecutter.keys() | list | tojson }}""")

# Names a bot package must not take: they would shadow what the project imports.
DEPENDENCIES = {
    "flask",
    "werkzeug",
    "click",
    "jinja2",
    "dotenv",
    "gunicorn",
    "redis",
    "rq",
    "ngrok",
    "pytest",
    "tests",
}
STDLIB = set(getattr(sys, "stdlib_module_names", ()))
URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
FREE_TEXT = ("project_name", "description", "author_name")
# cookiecutter renders as templates the answers given on its command line or in
# its config file, and `cruft update` renders the recorded ones: a typed template
# expression would bake one way now and another way on every later run. (Written
# with escapes and single braces: this file is itself a Jinja template.)
SYNTAX = "a { followed by {, % or #"
TEMPLATE_SYNTAX = re.compile(r"\{[\x7b\x25\x23]")


def taken(package):
    return keyword.iskeyword(package) or package in STDLIB or package.lower() in DEPENDENCIES


def valid_package(package):
    return package.isidentifier() and package.isascii() and package.islower() and not taken(package)


def package_suggestion(package):
    """A valid name close to `package`, for the error message."""
    name = re.sub(r"[^a-z0-9_]+", "_", package.lower()).strip("_") or "bot"
    if name[0].isdigit():
        name = f"bot_{name}"
    if taken(name):
        name = f"{name}_bot"
    return name if valid_package(name) else "my_bot"


def problems(answers):
    """Yield (field, what is wrong) for each bad answer, the first problem only."""
    for field, value in answers.items():
        if not field.startswith("_") and isinstance(value, str) and TEMPLATE_SYNTAX.search(value):
            yield field, f"{value!r}: must not hold template syntax ({SYNTAX})"

    for field in FREE_TEXT:
        value = str(answers[field])
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            yield field, f"{value!r}: must be one line of text (no tabs or control characters)"

    slug = str(answers["project_slug"])
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        yield "project_slug", f"{slug!r}: use lowercase letters, digits and single hyphens"

    package = str(answers["package_name"])
    fix = f"e.g. package_name={package_suggestion(package)}"
    if package[:1].isdigit():
        wrong = "must be a Python identifier, which cannot start with a digit"
    elif not package.isidentifier() or not package.isascii():
        wrong = "must be a Python identifier (letters, digits, _)"
    elif taken(package):
        wrong = "taken by Python or a dependency"
    elif package != package.lower():
        wrong = "use lowercase (PEP 8)"
    else:
        wrong = None
    if wrong:
        yield "package_name", f"{package!r}: {wrong}; {fix}"

    path = str(answers["webhook_path"])
    if not URL_PATH.fullmatch(path):
        yield "webhook_path", f"{path!r}: must start with / and hold only URL path characters"

    env = str(answers["signing_secret_env"])
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", env):
        yield "signing_secret_env", f"{env!r}: use A-Z, 0-9 and _ (not starting with a digit)"

    for field in ("timestamp_tolerance_seconds", "max_body_bytes"):
        value = str(answers[field]).strip()
        if not (value.isdecimal() and value.isascii() and int(value) > 0):
            yield field, f"{value!r}: must be a positive whole number"

    for field, choices in (
        ("reply_bridge", ("spectrum-ts", "none")),
        ("inbox", ("sqlite", "redis")),
        ("tunnel", ("ngrok", "none")),
        ("dockerfile", ("yes", "no")),
    ):
        if answers[field] not in choices:
            yield field, f"{answers[field]!r}: choose one of {', '.join(choices)}"


def first_per_field(found, order):
    """One line per bad answer, in the order the questions are asked."""
    seen = {}
    for field, message in found:
        seen.setdefault(field, message)
    return sorted(seen.items(), key=lambda item: order.index(item[0]))


def public_answers(answers, order):
    return [(key, answers[key]) for key in order if not key.startswith("_") and key in answers]


def cookiecutter_command(answers, *options):
    words = ["cookiecutter", *options, shlex.quote(answers.get("_template") or "TEMPLATE")]
    if answers.get("_checkout"):
        words += ["--checkout", shlex.quote(answers["_checkout"])]
    if answers.get("_output_dir"):
        words += ["-o", shlex.quote(answers["_output_dir"])]
    return words


def rerun_command(answers, order, bad):
    """`cookiecutter --no-input` with every valid answer kept and the bad ones as key=...

    Every answer is on the command line, so nothing falls back to a default
    (project_name above all).
    """
    words = cookiecutter_command(answers, "--no-input")
    for key, value in public_answers(answers, order):
        words.append(f"{key}=..." if key in bad else f"{key}={shlex.quote(str(value))}")
    return " ".join(words)


def template_folder(answers):
    """The template's folder as an absolute path, or None.

    cookiecutter passes it as given on its command line, which may be relative to
    the user's folder, while this script runs in the new project's folder. (The
    same function is in post_gen_project.py: hooks cannot import each other.)
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


def replay_file(answers):
    """cookiecutter's replay file for this run, if it is where cookiecutter puts it by default.

    cookiecutter writes it (answers included) before any hook runs; a replay_dir
    set in the user's config cannot be read here (it is YAML).
    """
    template = template_folder(answers)
    if template is None:
        return None
    path = Path.home() / ".cookiecutter_replay" / f"{template.name}.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["cookiecutter"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = all(recorded.get(k) == v for k, v in public_answers(answers, ORDER))
    return path if same else None


def left_behind(answers):
    """The folder cookiecutter made for a project_slug with a / and will leave, or None.

    The folders exist before this hook runs; on failure cookiecutter removes only
    the innermost one, the project folder this script runs in.
    """
    output = answers.get("_output_dir")
    if not output or "/" not in str(answers["project_slug"]):
        return None
    output, here = Path(output).resolve(), Path.cwd().resolve()
    made = [d for d in here.parents if output in d.parents and len(os.listdir(d)) == 1]
    return made[-1] if made else None


def report(found, answers):
    lines = ["Cannot generate the project; fix these answers:"]
    lines += [f"  {field}: {message}" for field, message in found]
    folder = left_behind(answers)
    if folder:
        lines.append(f"  (cookiecutter made {folder} before this check and leaves it: remove it)")
    if "_commit" in answers:
        # cruft is generating: the answers come from its command line or from .cruft.json.
        lines.append("No project files were written. Run cruft again with the fixed values")
        lines.append("(cruft create --extra-context '{...}'; for cruft update, in .cruft.json).")
        return lines
    lines.append("No project files were written. Run this, with the fixed values in place of ...:")
    lines.append(f"  {rerun_command(answers, ORDER, {field for field, _ in found})}")
    replay = replay_file(answers)
    if replay:
        # Replay takes every answer from the file as it is: none is derived again.
        again = cookiecutter_command(answers, "--replay-file", shlex.quote(str(replay)))
        lines.append(f"or fix them in {replay}, the answers cookiecutter saved, and run:")
        lines.append(f"  {' '.join(again)}")
    return lines


def main():
    found = first_per_field(problems(ANSWERS), ORDER)
    if not found:
        return 0
    print("\n".join(report(found, ANSWERS)), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
