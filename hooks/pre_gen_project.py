"""Check every answer before anything is written; report all problems at once.

Runs in the user's Python with only cookiecutter installed: standard library only.
The answers are read as JSON data (never spliced into code), so no answer can
change what this script does.
"""

import json
import keyword
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# Names a bot package must not take: they would shadow what the project imports.
DEPENDENCIES = {"flask", "werkzeug", "click", "jinja2", "dotenv", "gunicorn", "pytest", "tests"}
STDLIB = set(getattr(sys, "stdlib_module_names", ()))
URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def problems(answers):
    """Yield (field, what is wrong) for each bad answer."""
    slug = answers["project_slug"]
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        yield "project_slug", f"{slug!r}: use lowercase letters, digits and single hyphens"

    package = answers["package_name"]
    if not package.isidentifier() or not package.isascii():
        yield "package_name", f"{package!r}: must be a Python identifier (letters, digits, _)"
    elif keyword.iskeyword(package) or package in STDLIB or package.lower() in DEPENDENCIES:
        yield "package_name", f"{package!r}: taken by Python or a dependency; pick another name"
    elif package != package.lower():
        yield "package_name", f"{package!r}: use lowercase (PEP 8)"

    path = answers["webhook_path"]
    if not URL_PATH.fullmatch(path):
        yield "webhook_path", f"{path!r}: must start with / and hold only URL path characters"

    env = answers["signing_secret_env"]
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


def main():
    found = list(problems(ANSWERS))
    if not found:
        return 0
    print("Cannot generate the project; fix these answers:", file=sys.stderr)
    for field, message in found:
        print(f"  {field}: {message}", file=sys.stderr)
    template = ANSWERS.get("_template") or "<template>"
    fixes = " ".join(dict.fromkeys(f"{field}=..." for field, _ in found))
    print("Nothing was written. Run again with the fixed values, e.g.:", file=sys.stderr)
    print(f"  cookiecutter {template} {fixes}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
