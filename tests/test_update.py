"""A template change reaches a baked project with `cruft update`, however it was baked.

Each test copies the template into a git repository of its own, bakes from a
commit of it, changes the template and runs `cruft update` in the bake.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SKIP_DIRS, TEMPLATE
from cruft import create

ANSWERS = {"project_name": "Update Bot", "inbox": "redis", "description": 'Says "hi" 😀'}
ADDED = "A line the template gained after the bake."
# Commits need an identity; the machine's git config may have none.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}


def run(args: list[str], cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "COOKIECUTTER"))}
    env |= GIT_ENV | ({"HOME": str(home)} if home else {})
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def commit_all(folder: Path, message: str) -> str:
    if not (folder / ".git").exists():
        run(["git", "init", "-q"], folder)
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-q", "-m", message], folder)
    return run(["git", "rev-parse", "HEAD"], folder).stdout.strip()


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """This template, as the first commit of a repository of its own."""
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns(".git", *SKIP_DIRS))
    commit_all(copy, "template")
    return copy


def bake_with_cookiecutter(template: Path, out: Path, home: Path) -> Path:
    """The README's way: `cookiecutter --no-input .` run in the template's folder."""
    answers = [f"{key}={value}" for key, value in ANSWERS.items()]
    cookiecutter = [sys.executable, "-m", "cookiecutter"]
    run([*cookiecutter, "--no-input", ".", "-o", str(out), *answers], template, home)
    return out / "update-bot"


def bake_with_cruft(template: Path, out: Path, home: Path) -> Path:
    return create(str(template), output_dir=out, extra_context=ANSWERS, default_config=True)


def record(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text(encoding="utf-8"))


def test_plain_bake_records_what_cruft_create_records(template: Path, tmp_path: Path) -> None:
    plain = record(bake_with_cookiecutter(template, tmp_path / "plain", tmp_path))
    cruft = record(bake_with_cruft(template, tmp_path / "cruft", tmp_path))
    head = run(["git", "rev-parse", "HEAD"], template).stdout.strip()
    for key in ("template", "commit", "checkout", "directory"):
        assert plain[key] == cruft[key], key
    assert plain["template"] == str(template) and plain["commit"] == head
    # cruft also copies the template's private keys, which it reads afresh on update.
    expected = {
        key: value
        for key, value in cruft["context"]["cookiecutter"].items()
        if not key.startswith("_") or key in ("_template", "_commit")
    }
    assert plain["context"]["cookiecutter"] == expected
    assert plain["context"]["cookiecutter"]["description"] == ANSWERS["description"]


@pytest.mark.parametrize(
    "bake", [bake_with_cookiecutter, bake_with_cruft], ids=["cookiecutter", "cruft"]
)
def test_template_change_reaches_the_bake(template: Path, tmp_path: Path, bake) -> None:
    project = bake(template, tmp_path / "out", tmp_path)
    env_file = (project / ".env").read_text()
    bot = project / "update_bot" / "bot.py"
    bot.write_text(bot.read_text() + "\n# my own change\n")
    commit_all(project, "baked, then edited")
    cruft = [sys.executable, "-m", "cruft"]
    run([*cruft, "check"], project)  # up to date with the template's only commit

    readme = template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + f"\n{ADDED}\n")
    new = commit_all(template, "template: one more line")

    run([*cruft, "update", "-y"], project, tmp_path)
    assert (project / "README.md").read_text().endswith(f"\n{ADDED}\n")
    assert bot.read_text().endswith("\n# my own change\n")
    assert (project / ".env").read_text() == env_file, "the project's own secret is kept"
    assert record(project)["commit"] == new
    assert not list(project.rglob("*.rej"))
    changed = run(["git", "status", "--porcelain"], project).stdout.split("\n")
    assert sorted(line[3:] for line in changed if line) == [".cruft.json", "README.md"]


def test_bake_from_a_folder_without_git_says_how_to_record_it(cookies, capfd, tmp_path) -> None:
    copy = tmp_path / "not-a-checkout"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns(".git", *SKIP_DIRS))
    result = cookies.bake(template=str(copy))
    assert result.exit_code == 0, result.exception
    assert not (result.project_path / ".cruft.json").exists()
    assert "The template is not a git checkout: `cruft link`" in capfd.readouterr().out


def test_refusal_under_cruft_says_where_cruft_takes_the_answers(
    template: Path, tmp_path: Path, capfd
) -> None:
    with pytest.raises(Exception, match="Hook script failed"):
        create(
            str(template),
            output_dir=tmp_path / "out",
            extra_context={"max_body_bytes": "lots"},
            default_config=True,
        )
    err = capfd.readouterr().err
    assert "  max_body_bytes: 'lots': must be a positive whole number" in err
    assert "cruft create --extra-context" in err and "cookiecutter --no-input" not in err
