"""Bad answers stop generation with one clear line each, and leave nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD_ANSWERS = [
    ("project_slug", "My Bot", "lowercase letters, digits and single hyphens"),
    ("project_slug", "bot--one", "lowercase letters, digits and single hyphens"),
    ("package_name", "my-bot", "must be a Python identifier"),
    ("package_name", "class", "taken by Python or a dependency"),
    ("package_name", "json", "taken by Python or a dependency"),
    ("package_name", "flask", "taken by Python or a dependency"),
    ("package_name", "MyBot", "use lowercase"),
    ("webhook_path", "spectrum-webhook", "must start with /"),
    ("webhook_path", "/spectrum webhook", "must start with /"),
    ("webhook_path", '/a"b', "must start with /"),
    ("signing_secret_env", "spectrum_secret", "use A-Z, 0-9 and _"),
    ("signing_secret_env", "1SECRET", "use A-Z, 0-9 and _"),
    ("timestamp_tolerance_seconds", "0", "must be a positive whole number"),
    ("timestamp_tolerance_seconds", "five", "must be a positive whole number"),
    ("max_body_bytes", "-1", "must be a positive whole number"),
    ("max_body_bytes", "1e6", "must be a positive whole number"),
]


@pytest.mark.parametrize(("field", "value", "hint"), BAD_ANSWERS)
def test_bad_answer_is_refused(
    cookies, capfd, tmp_path: Path, field: str, value: str, hint: str
) -> None:
    result = cookies.bake(extra_context={field: value})
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "FailedHookException"
    err = capfd.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith(f"  {field}: {value!r}: "))
    assert hint in line
    assert "Traceback" not in err
    output_dir = tmp_path / "cookies" / "bake00"  # where pytest-cookies baked
    assert list(output_dir.iterdir()) == [], "nothing may be left on disk"


def test_every_bad_answer_is_reported_at_once(cookies, capfd) -> None:
    result = cookies.bake(
        extra_context={"project_slug": "Bad Slug", "webhook_path": "nope", "max_body_bytes": "x"}
    )
    assert result.exit_code != 0
    err = capfd.readouterr().err
    for field in ("project_slug", "webhook_path", "max_body_bytes"):
        assert f"  {field}: " in err
    rerun = err.splitlines()[-1]
    assert rerun.startswith("  cookiecutter ")
    for field in ("project_slug", "webhook_path", "max_body_bytes"):
        assert f" {field}=..." in rerun


def test_answers_are_data_never_code(cookies, capfd, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f'x"""); open({str(marker)!r}, "w"); print(("'
    result = cookies.bake(extra_context={"project_name": payload, "description": payload})
    assert not marker.exists()
    # The slug derived from that name is invalid, and said so.
    assert result.exit_code != 0
    assert "project_slug" in capfd.readouterr().err
