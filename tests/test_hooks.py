"""Answers: bad ones stop generation with one clear line each and leave nothing on disk.

Also how a refusal says to run again, what the post-generation hook says, and,
pinned, what cookiecutter does before any hook can look (so a change shows).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import TEMPLATE
from cookiecutter import prompt
from cookiecutter.main import cookiecutter

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

BAD_ANSWERS = [
    ("project_slug", "My Bot", "lowercase letters, digits and single hyphens"),
    ("project_slug", "bot--one", "lowercase letters, digits and single hyphens"),
    ("package_name", "my-bot", "must be a Python identifier"),
    ("package_name", "3d_bot", "cannot start with a digit; e.g. package_name=bot_3d_bot"),
    ("package_name", "class", "taken by Python or a dependency; e.g. package_name=class_bot"),
    ("package_name", "json", "taken by Python or a dependency"),
    ("package_name", "flask", "taken by Python or a dependency"),
    ("package_name", "redis", "taken by Python or a dependency"),
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
    ("description", "two\nlines", "must be one line of text"),
    ("author_name", "tab\there", "must be one line of text"),
    ("project_name", "bell\x07", "must be one line of text"),
]


def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "cookies" / "bake00"  # where pytest-cookies bakes first


def left_in(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.exists() else []


def refusal(err: str, field: str) -> str:
    return next(x for x in err.splitlines() if x.startswith(f"  {field}: "))


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
    assert left_in(output_dir(tmp_path)) == [], "nothing may be left on disk"


def test_every_bad_answer_is_reported_at_once(cookies, capfd) -> None:
    result = cookies.bake(
        extra_context={"project_slug": "Bad Slug", "webhook_path": "nope", "max_body_bytes": "x"}
    )
    assert result.exit_code != 0
    err = capfd.readouterr().err
    for field in ("project_slug", "webhook_path", "max_body_bytes"):
        assert len([x for x in err.splitlines() if x.startswith(f"  {field}: ")]) == 1
    rerun = next(x for x in err.splitlines() if x.startswith("  cookiecutter --no-input "))
    for field in ("project_slug", "webhook_path", "max_body_bytes"):
        assert f" {field}=... " in f"{rerun} "


def test_answers_are_data_never_code(cookies, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f'x"""); open({str(marker)!r}, "w"); print(("'
    result = cookies.bake(extra_context={"project_name": payload, "description": payload})
    assert not marker.exists()
    assert result.exit_code == 0, result.exception  # slugify makes a valid name of it
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == payload


# --- Names: slug and package derived with slugify (issue 13) ---


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Weather Bot!", "weather-bot"),
        ("Zoë's Bot", "zoe-s-bot"),
        ("Support / Sales", "support-sales"),
        ("../../escape", "escape"),
        ("日本語ボット", "ri-ben-yu-hotuto"),
        ("🤖", "spectrum-bot"),  # nothing to slugify: the template's fallback
        ("Support Concierge " * 20, None),  # 360 characters
    ],
)
def test_any_project_name_gives_a_usable_slug(bake, tmp_path: Path, name: str, slug) -> None:
    project = bake(project_name=name)
    assert SLUG.fullmatch(project.name) and len(project.name) <= 64
    assert slug is None or project.name == slug
    assert (project / project.name.replace("-", "_") / "bot.py").is_file()
    assert (project / "README.md").read_text().startswith(f"# {name}\n")
    assert list(output_dir(tmp_path).iterdir()) == [project], "no other folder may be made"


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("3D Bot", "bot_3d_bot"),
        ("Class", "class_bot"),
        ("JSON", "json_bot"),
        ("Flask", "flask_bot"),
    ],
)
def test_name_that_makes_no_package_is_refused_with_a_fix(
    cookies, capfd, tmp_path: Path, name: str, package: str
) -> None:
    result = cookies.bake(extra_context={"project_name": name})
    assert result.exit_code != 0
    assert refusal(capfd.readouterr().err, "package_name").endswith(f"e.g. package_name={package}")
    assert left_in(output_dir(tmp_path)) == []
    fixed = cookies.bake(extra_context={"project_name": name, "package_name": package})
    assert fixed.exit_code == 0, fixed.exception
    assert (fixed.project_path / package / "bot.py").is_file()


# --- What cannot be caught before folders are made (issue 13, item 5): pinned ---


def test_slug_with_a_slash_leaves_the_folders_cookiecutter_made(
    cookies, capfd, tmp_path: Path
) -> None:
    """cookiecutter makes out/a/b before any hook runs and removes only b; the hook says so."""
    result = cookies.bake(extra_context={"project_slug": "a/b"})
    assert result.exit_code != 0
    left = output_dir(tmp_path) / "a"
    assert list(output_dir(tmp_path).iterdir()) == [left] and list(left.iterdir()) == []
    assert f"cookiecutter made {left} before this check" in capfd.readouterr().err


def test_overlong_slug_fails_in_cookiecutter_before_any_hook(cookies, tmp_path: Path) -> None:
    result = cookies.bake(extra_context={"project_slug": "x" * 300})
    assert isinstance(result.exception, OSError)
    assert result.exception.errno == errno.ENAMETOOLONG
    assert left_in(output_dir(tmp_path)) == []


def test_bad_choice_fails_in_cookiecutter_before_any_hook(cookies, tmp_path: Path) -> None:
    """A choice not in the list is refused by cookiecutter while it reads the context.

    That is before the pre-generation hook, and the pre-prompt hook is never
    shown the answers, so no hook can word this error.
    """
    result = cookies.bake(extra_context={"inbox": "postgres"})
    assert isinstance(result.exception, ValueError)
    assert str(result.exception) == (
        "postgres provided for choice variable inbox, but the choices are ['sqlite', 'redis']."
    )
    assert left_in(output_dir(tmp_path)) == []


# --- Template syntax in answers (issue 15) ---


def test_template_syntax_on_the_command_line_is_rendered_before_any_hook(bake) -> None:
    """Pinned: cookiecutter renders command-line answers, so the hook only sees 49."""
    project = bake(description="{{ 7*7 }}")
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["description"] == "49"


def test_typed_template_syntax_is_refused(
    monkeypatch, capfd, tmp_path: Path, cookiecutter_config: Path
) -> None:
    """Typed at the prompt, it reaches the hook as it is: it would render on a later run."""

    def answer(var_name, default_value, prompts=None, prefix=""):
        return "{{ 7*7 }}" if var_name == "description" else default_value

    monkeypatch.setattr(prompt, "read_user_variable", answer)
    monkeypatch.setattr(prompt, "read_user_choice", lambda var_name, options, *a, **k: options[0])
    out = tmp_path / "out"
    with pytest.raises(Exception, match="Hook script failed"):
        cookiecutter(str(TEMPLATE), output_dir=str(out), config_file=str(cookiecutter_config))
    line = refusal(capfd.readouterr().err, "description")
    assert line == "  description: '{{ 7*7 }}': must not hold template syntax " + (
        "(a { followed by {, % or #)"
    )
    assert left_in(out) == []


# --- Unicode in the metadata: valid TOML that round-trips (issue 15) ---


@pytest.mark.parametrize(
    ("description", "author"),
    [
        ("Grinning 😀 bot", "Zoë O'Brien 🎉"),
        ('Says "hi" \\ and <b>bye</b>', 'Back\\slash "Q" &amp;'),
        ("ends in a backslash \\", "𝄞 日本語 ümlaut ñ"),
        ("'''\"\"\" \\u00e9 \\n \\\\", "\u00a0non-breaking\u200bzero-width\u2028"),
    ],
)
def test_metadata_is_valid_toml_that_round_trips(bake, description: str, author: str) -> None:
    project = bake(description=description, author_name=author)
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["description"] == description
    assert meta["authors"] == [{"name": author}]


# --- Re-running after a refusal (issue 13) ---


@pytest.fixture
def cookiecutter_config(tmp_path: Path) -> Path:
    """A config keeping cookiecutter's replay files and clones inside the test's folder."""
    config = tmp_path / "cookiecutterrc"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n"
    )
    return config


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    """The cookiecutter command, with a home of its own (so its own replay folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOKIECUTTER")}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refusal_prints_a_rerun_command_that_keeps_every_valid_answer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    answers = {
        "project_name": "Weather Bot",
        "project_slug": "Weather Bot",  # bad, and so is the package name derived from it
        "description": "It's sunny; $HOME stays `as is`",
        "inbox": "redis",
    }
    first = cli(
        "--no-input",
        str(TEMPLATE),
        "-o",
        str(out),
        *(f"{k}={v}" for k, v in answers.items()),
        home=tmp_path,
    )
    assert first.returncode == 1
    assert left_in(out) == []
    assert "  project_slug: 'Weather Bot': use lowercase" in first.stderr
    # cookiecutter logs the failed hook with a traceback of its own (on stdout), after
    # the hook's message: pinned, because the README tells users what it means.
    assert "Stopping generation because pre_gen_project hook script" in first.stdout

    rerun = next(x for x in first.stderr.splitlines() if x.startswith("  cookiecutter --no-input "))
    words = shlex.split(rerun)
    assert words[:5] == ["cookiecutter", "--no-input", str(TEMPLATE), "-o", str(out)]
    given = dict(word.split("=", 1) for word in words[5:])
    assert {k for k, v in given.items() if v == "..."} == {"project_slug", "package_name"}
    assert {k: given[k] for k in ("project_name", "description", "inbox")} == {
        k: answers[k] for k in ("project_name", "description", "inbox")
    }
    given |= {"project_slug": "weather-bot", "package_name": "weather_bot"}
    again = cli(*words[1:5], *(f"{k}={v}" for k, v in given.items()), home=tmp_path)
    assert again.returncode == 0, again.stderr
    project = out / "weather-bot"
    assert (project / "README.md").read_text().startswith("# Weather Bot\n")
    assert (project / "weather_bot" / "inbox" / "redis_store.py").is_file()


def test_refusal_names_the_replay_file_which_replays_once_fixed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = cli(
        "--no-input",
        str(TEMPLATE),
        "-o",
        str(out),
        "project_name=Rainy Bot",
        "max_body_bytes=lots",
        home=tmp_path,
    )
    assert first.returncode == 1
    replay = tmp_path / ".cookiecutter_replay" / f"{TEMPLATE.name}.json"
    assert f"or fix them in {replay}, the answers cookiecutter saved, and run:" in first.stderr
    command = first.stderr.splitlines()[-1]
    words = shlex.split(command)
    assert words == ["cookiecutter", "--replay-file", str(replay), str(TEMPLATE), "-o", str(out)]
    saved = json.loads(replay.read_text())
    saved["cookiecutter"]["max_body_bytes"] = "4096"
    replay.write_text(json.dumps(saved))
    again = cli(*words[1:], home=tmp_path)
    assert again.returncode == 0, again.stderr
    project = out / "rainy-bot"
    assert (project / "README.md").read_text().startswith("# Rainy Bot\n")
    assert "MAX_BODY_BYTES = 4096" in (project / "tests" / "conftest.py").read_text()


def test_bad_choice_on_the_command_line_ends_in_cookiecutter_traceback(tmp_path: Path) -> None:
    """Pinned (see the README's troubleshooting): no hook runs before this error."""
    out = tmp_path / "out"
    done = cli("--no-input", str(TEMPLATE), "-o", str(out), "inbox=postgres", home=tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "ValueError: postgres provided for choice variable inbox, "
        "but the choices are ['sqlite', 'redis']."
    )
    assert left_in(out) == []


# --- What the bake says next (issue 15) ---


def test_node_prompt_says_what_is_true() -> None:
    prompts = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"]
    text = prompts["reply_bridge"]["spectrum-ts"]
    assert "Node 22 recommended" in text and "Node 20 works for iMessage" in text
    assert "Telegram and Slack" in text


@pytest.mark.parametrize("inbox", ["redis", "sqlite"])
def test_next_steps_say_a_redis_bake_needs_a_redis_server(bake, capfd, inbox: str) -> None:
    bake(inbox=inbox)
    said = capfd.readouterr().out
    assert ("need a Redis server" in said) == (inbox == "redis")
    assert ("`make test` starts its own\nredis-server" in said) == (inbox == "redis")
