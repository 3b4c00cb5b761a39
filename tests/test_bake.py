"""Bake every combination of options; each bake must lint clean and pass its own tests."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import PYTEST, TEMPLATE, baked_files, run, run_baked_tests
from import_graph import import_cycle

CHOICES = {
    key: value
    for key, value in json.loads((TEMPLATE / "cookiecutter.json").read_text()).items()
    if isinstance(value, list) and not key.startswith("_")
}
COMBINATIONS = [
    dict(zip(CHOICES, values, strict=True)) for values in itertools.product(*CHOICES.values())
]


def pairs(combination: dict[str, str]) -> set[tuple[tuple[str, str], ...]]:
    return set(itertools.combinations(combination.items(), 2))


def covering_every_pair(combinations: list[dict[str, str]]) -> list[dict[str, str]]:
    """A few combinations that between them hold every pair of option values."""
    needed = set().union(*map(pairs, combinations))
    chosen = []
    while needed:
        best = max(combinations, key=lambda c: len(pairs(c) & needed))
        chosen.append(best)
        needed -= pairs(best)
    return chosen


# Each baked suite takes up to half a minute, so it runs on a covering set (the
# defaults first); every combination is still baked, checked and linted.
TESTED = covering_every_pair(COMBINATIONS)


def ids(combinations: list[dict[str, str]]) -> list[str]:
    return ["-".join(c.values()) for c in combinations]


def optional_files(package: str = "my_spectrum_bot") -> dict[tuple[str, str], list[str]]:
    """The files each optional part brings: the table the post-generation hook uses."""
    table = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_optional_files"]
    return {
        tuple(key.split("=", 1)): [p.replace("PACKAGE", package, 1) for p in paths]
        for key, paths in table.items()
    }


def ruff(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "ruff", *args, "--no-cache", "."], project)


def assert_fully_rendered(project: Path) -> None:
    for path in baked_files(project):
        if path.suffix == ".png":
            continue  # binary, copied as is
        text = path.read_text(encoding="utf-8")
        for marker in ("{{", "{%", "cookiecutter."):
            assert marker not in text, f"{marker!r} left in {path.relative_to(project)}"


@pytest.mark.parametrize("context", COMBINATIONS, ids=ids(COMBINATIONS))
def test_every_combination_bakes_and_lints(bake, context: dict[str, str]) -> None:
    project = bake(**context)
    assert_fully_rendered(project)
    for (field, value), paths in optional_files().items():
        for path in paths:
            assert (project / path).exists() == (context[field] == value), path
    assert ruff(project, "check").returncode == 0, ruff(project, "check").stdout
    assert import_cycle(project / "my_spectrum_bot") is None
    if context["dockerfile"] == "yes":  # the other half has the same Python files
        # `make typecheck`: strict, with the settings in the bake's pyproject.toml.
        typed = run([sys.executable, "-m", "mypy", "--no-incremental"], project)
        assert typed.returncode == 0, typed.stdout


@pytest.mark.parametrize("context", TESTED, ids=ids(TESTED))
def test_combinations_pass_their_own_tests(bake, context: dict[str, str]) -> None:
    tests = run_baked_tests(bake(**context))
    assert tests.returncode == 0, tests.stdout[-3000:]
    # Node and redis-server are here (CI installs them): nothing may be skipped.
    assert "skipped" not in tests.stdout.splitlines()[-1], tests.stdout[-3000:]


ANOTHER_BOT = '''"""Not the sample bot: every framework test must pass with it too."""

from .botkit import Bot, Context
from .events import Text

bot = Bot()


@bot.on(Text)
def shout(ctx: Context, text: Text) -> str:
    return text.text.upper() + "!"
'''


def test_framework_tests_do_not_depend_on_the_sample_bot(bake) -> None:
    """A user's bot.py replaces the sample: the project's other tests still pass."""
    project = bake(inbox="redis")  # every test file the template has
    (project / "my_spectrum_bot" / "bot.py").write_text(ANOTHER_BOT)
    other_tests = [sys.executable, "-m", "pytest", *PYTEST]
    tests = run([*other_tests, "--ignore", "tests/test_bot.py"], project)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "skipped" not in tests.stdout.splitlines()[-1], tests.stdout[-3000:]
    # The sample's own tests do see the change: they are the ones to edit.
    assert run([*other_tests, "tests/test_bot.py"], project).returncode == 1
    module = "import types, my_spectrum_bot.bot as m; assert isinstance(m, types.ModuleType)"
    assert run([sys.executable, "-c", module], project).returncode == 0


def test_default_bake_is_formatted(bake) -> None:
    project = bake()
    result = ruff(project, "format", "--check")
    assert result.returncode == 0, result.stdout


def test_chosen_signing_settings_reach_the_tests(bake) -> None:
    """Unusual answers everywhere: the baked tests are built from them, and pass."""
    project = bake(
        project_name="Acme Support Concierge For Very Long Names",
        webhook_path="/hooks/spectrum/v2",
        signing_secret_env="ACME_WEBHOOK_SECRETS",
        timestamp_tolerance_seconds="60",
        max_body_bytes="4096",
        description='Says "hi" \\ and <b>bye</b>',
        author_name="Zoë O'Brien",
    )
    package = project / "acme_support_concierge_for_very_long_names"
    conftest = (project / "tests" / "conftest.py").read_text()
    assert 'WEBHOOK_PATH = "/hooks/spectrum/v2"' in conftest
    assert 'SIGNING_SECRET_ENV = "ACME_WEBHOOK_SECRETS"' in conftest
    assert "TOLERANCE_SECONDS = 60" in conftest
    assert "MAX_BODY_BYTES = 4096" in conftest
    assert (project / ".env").read_text().count("ACME_WEBHOOK_SECRETS=") == 1
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["description"] == 'Says "hi" \\ and <b>bye</b>'
    assert meta["authors"] == [{"name": "Zoë O'Brien"}]
    assert package.is_dir()
    assert ruff(project, "check").returncode == 0
    tests = run_baked_tests(project)
    assert tests.returncode == 0, tests.stdout[-3000:]


def test_env_holds_a_fresh_secret_and_is_ignored(bake) -> None:
    first, second = bake(project_name="one"), bake(project_name="two")
    secrets = []
    for project in (first, second):
        line = (project / ".env").read_text().splitlines()[-1]
        name, secret = line.split("=")
        assert name == "SPECTRUM_SIGNING_SECRET"
        assert len(secret) == 64 and int(secret, 16) >= 0
        assert (project / ".env").stat().st_mode & 0o077 == 0  # readable by the owner only
        assert ".env" in (project / ".gitignore").read_text().splitlines()
        secrets.append(secret)
    assert secrets[0] != secrets[1]


def test_readme_tree_lists_every_module(bake) -> None:
    """The template README's "What you get" names each module of the fullest bake, no more."""
    project = bake(inbox="redis")  # every other option is on by default
    package = project / "my_spectrum_bot"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    modules.discard("inbox/__init__.py")
    modules.discard("devtools/__init__.py")
    modules.discard("__init__.py")
    readme = (TEMPLATE / "README.md").read_text()
    tree = readme[readme.index("my-spectrum-bot/\n") : readme.index("  bridge/ ")]
    listed, folder = set(), ""
    for line in tree.splitlines()[2:]:
        name = line.split()[0]
        if name.endswith("/"):
            folder = name
        else:
            listed.add(folder + name if line.startswith("      ") else name)
    assert listed == modules
