"""A baked project, committed and cloned, installs itself and passes `make test` and `make demo`.

This is the slow, honest test: a new virtualenv, dependencies from the package
index, no `.env` in the clone (it is git-ignored), and nothing from this environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run
from harness import free_port

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def git(*args: str, cwd: Path) -> None:
    result = run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd)
    assert result.returncode == 0, result.stderr


def test_fresh_clone_installs_tests_and_demos(bake, tmp_path: Path) -> None:
    project = bake()
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "baked", cwd=project)
    tracked = run(["git", "ls-files"], project).stdout.split()
    assert ".env" not in tracked
    git("clone", "-q", str(project), str(tmp_path / "clone"), cwd=tmp_path)
    clone = tmp_path / "clone"

    tested = run(["make", "test"], clone, timeout=600)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert " passed" in tested.stdout

    # `make demo` needs a secret: the clone has no .env, so it comes from the environment.
    demo = run(
        ["make", "demo"],
        clone,
        timeout=120,
        PORT=str(free_port()),
        SPECTRUM_SIGNING_SECRET="f" * 64,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    # The sample bot.py greets a text with "hello" in it.
    assert "bot replied (dry-run): Hello! Try /remember." in demo.stdout
