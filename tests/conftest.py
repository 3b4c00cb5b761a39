"""Helpers shared by the template's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parent.parent
# Baked suites mostly wait on servers they start: 4 processes, as `make test` runs them.
PYTEST = ["-q", "-p", "no:cacheprovider", "-n", "4"]
SKIP_DIRS = {".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "instance", "node_modules"}


def baked_files(project: Path) -> list[Path]:
    return [
        p
        for p in project.rglob("*")
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(project).parts)
    ]


def run(
    args: list[str], cwd: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """Run a command in a baked project, with a clean signing-secret environment."""
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET")} | env
    return subprocess.run(
        args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def run_baked_tests(project: Path) -> subprocess.CompletedProcess:
    """The baked project's own suite, run with this environment's Python and packages."""
    return run([sys.executable, "-m", "pytest", *PYTEST], project)


@pytest.fixture
def bake(cookies):
    """Bake with the given answers and insist that it worked."""

    def bake(**context: str) -> Path:
        result = cookies.bake(extra_context=context)
        assert result.exit_code == 0, result.exception
        return Path(result.project_path)

    return bake
