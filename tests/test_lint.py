"""The template's own Python (hooks, these tests, the benchmarks) is ruff-clean too."""

import subprocess
import sys

from conftest import TEMPLATE


def test_template_code_is_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "hooks", "tests", "bench"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
