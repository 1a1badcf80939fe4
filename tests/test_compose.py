"""docker-compose.yaml, the Dockerfile and .env.example agree with each other and with the project.

There is no Docker daemon here and no image can be pulled, so nothing is started. The Compose file is
validated by `docker compose config` where the Docker client has Compose, else against the Compose
specification's JSON schema (tests/data/compose-spec.json, see tests/data/README.md), after the
interpolation Compose does (${VAR}, ${VAR:-default}, ${VAR:?error}, $$) with the .env that
docker/make-env.sh writes from .env.example. Then every service is checked against the others: one
Airflow version (the image's and requirements.txt's), one image and one common environment for every
Airflow component (the executor, the execution API URL at the api-server service's port, the Fernet key,
the JWT secret, the connections), the xero_api pool as README sizes it, two Celery workers or more,
healthchecks, dependencies on services that exist, and the demo's stand-ins matching the connections.

Each check is a function of a `Project` (the files as read); `test_each_check_can_fail` breaks a copy of
the project one way per check and shows that check failing on it.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet

from devtools import compose_init, demo_data

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
MAKE_ENV = REPO_ROOT / "docker" / "make-env.sh"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

AIRFLOW_COMPONENTS = {  # service -> the airflow subcommand it runs
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
INIT_SERVICE = "airflow-init"
DEMO_SERVICES = {"astute-db", "astute-init", "xero-sandbox"}
REQUIRED_SERVICES = {"postgres", "redis", INIT_SERVICE, *AIRFLOW_COMPONENTS, *DEMO_SERVICES}
SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
CONNECTIONS = ("AIRFLOW_CONN_ASTUTE_DB", "AIRFLOW_CONN_XERO_DEFAULT")
MIN_CELERY_PROVIDER = (3, 8, 3)  # the first for Airflow 3.3 (shared notes)


# --------------------------------------------------------------------------------------------- reading
def read_env_file(path: Path) -> dict[str, str]:
    """A .env file as Compose reads it (the subset used here): KEY=VALUE, `#` comments, 'literal' and
    "quoted" values, an unquoted value ending at ` #`."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()), f"{path.name}:{number}: not KEY=VALUE"
        value = value.strip()
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            assert end > 0, f"{path.name}:{number}: unterminated quote"
            value = value[1:end]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[key.strip()] = value
    return values


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of every string in the file (keys are left as they are, as Compose does)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        is_set, current = name in env, env.get(name, "")
        if op in (":-", "-"):
            return current if (current if op == ":-" else is_set) else arg
        if op in (":?", "?"):
            if not (current if op == ":?" else is_set):
                raise MissingVariable(f"required variable {name} {arg}")
            return current
        if op in (":+", "+"):
            return arg if (current if op == ":+" else is_set) else ""
        return current

    return _VARIABLE.sub(substitute, value)


@dataclass
class Project:
    raw: dict[str, Any]  # docker-compose.yaml as YAML reads it (anchors and merge keys resolved)
    compose: dict[str, Any]  # ... interpolated with `env`
    env: dict[str, str]  # the .env make-env.sh writes from .env.example
    env_example: dict[str, str]
    dockerfile: str
    requirements: dict[str, str]
    pyproject: str
    readme: str
    dags: str  # the DAG files' text, concatenated
    gitignore: list[str]
    dockerignore: list[str]

    # --- views
    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.compose["services"]

    @property
    def common(self) -> dict[str, Any]:
        return self.compose["x-airflow-common"]

    def airflow_services(self) -> dict[str, dict[str, Any]]:
        """Every service that runs Airflow: the components, airflow-init, airflow-cli, flower."""
        return {name: service for name, service in self.services.items()
                if name.startswith("airflow-") or name == "flower"}

    def env_of(self, service: str) -> dict[str, str]:
        return environment(self.services[service])


def requirement_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            pins[normalise(name)] = version.strip() if sep else ""
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def make_env(tmp_dir: Path) -> dict[str, str]:
    target = tmp_dir / ".env"
    subprocess.run(["sh", str(MAKE_ENV), str(target)], check=True, capture_output=True, text=True, timeout=60)
    return read_env_file(target)


def load_project(env_path: Path) -> Project:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = read_env_file(env_path)
    return Project(
        raw=raw,
        compose=interpolate(raw, env),
        env=env,
        env_example=read_env_file(ENV_EXAMPLE),
        dockerfile=DOCKERFILE.read_text(encoding="utf-8"),
        requirements=requirement_pins(REPO_ROOT / "requirements.txt"),
        pyproject=(REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"),
        readme=(REPO_ROOT / "README.md").read_text(encoding="utf-8"),
        dags="\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "dags").glob("*.py"))),
        gitignore=patterns(REPO_ROOT / ".gitignore"),
        dockerignore=patterns(REPO_ROOT / ".dockerignore"),
    )


def patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --------------------------------------------------------------------------------------------- helpers
def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_test(service: dict[str, Any]) -> list[str]:
    check = service.get("healthcheck") or {}
    if check.get("disable") in (True, "true"):
        return []
    test = check.get("test") or []
    return [test] if isinstance(test, str) else list(test)


def is_one_shot(name: str) -> bool:
    """airflow-init, astute-init: run to completion on every `up`. (airflow-cli is run by hand, like the official
    file's, and has no healthcheck either.)"""
    return name.endswith("-init")


def needs_healthcheck(name: str) -> bool:
    return not is_one_shot(name) and name != "airflow-cli"


def api_server_port(project: Project) -> int:
    args = argv(project.services["airflow-apiserver"])
    for flag in ("--port", "-p"):
        if flag in args:
            return int(args[args.index(flag) + 1])
    return int(project.env_of("airflow-apiserver").get("AIRFLOW__API__PORT", 8080))


def postgres_url(url: str) -> tuple[str | None, int, str | None, str | None, str]:
    parts = urlsplit(url.removeprefix("db+"))
    return parts.hostname, parts.port or 5432, parts.username, parts.password, parts.path.lstrip("/")


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (l.strip() for l in joined.splitlines()) if line]


def base_image(project: Project) -> str:
    instructions = dockerfile_instructions(project.dockerfile)
    args = {}
    for op, rest in instructions:
        if op == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key.strip()] = value.strip().strip('"')
    froms = [rest.split()[0] for op, rest in instructions if op == "FROM"]
    assert froms, "the Dockerfile has no FROM"
    return interpolate(froms[-1], args)


# --------------------------------------------------------------------------------------------- checks
def check_schema(project: Project) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(project.compose), key=lambda e: list(e.path))
    assert not errors, "docker-compose.yaml against the Compose specification:\n" + "\n".join(
        f"  {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}" for e in errors)


def check_base_image(project: Project) -> None:
    image = base_image(project)
    match = re.fullmatch(r"apache/airflow:(?P<airflow>\d+\.\d+\.\d+)-python(?P<python>\d+\.\d+)", image)
    assert match, f"the Dockerfile's base is {image!r}, not an official apache/airflow:<version>-python<x.y> image"
    pinned = project.requirements.get("apache-airflow")
    assert match["airflow"] == pinned, f"the image is Airflow {match['airflow']}, requirements.txt pins {pinned}"
    assert project.requirements.get("apache-airflow-core") == pinned, "apache-airflow-core differs from apache-airflow"
    requires = re.search(r'requires-python\s*=\s*">=(\d+\.\d+)', project.pyproject)
    assert requires and match["python"] == requires.group(1), (
        f"the image's Python is {match['python']}, pyproject.toml requires {requires and requires.group(1)}")


def check_image_installs_at_build_time(project: Project) -> None:
    instructions = dockerfile_instructions(project.dockerfile)
    runs = [rest for op, rest in instructions if op == "RUN"]
    copies = [rest for op, rest in instructions if op == "COPY"]
    installs = [run for run in runs if "pip install" in run]
    deps = next((run for run in installs if "-r requirements.txt" in run), None)
    assert deps, "the Dockerfile does not pip install -r requirements.txt"
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in deps, (
        "pip may move the base image's Airflow: hold apache-airflow==${AIRFLOW_VERSION}")
    assert any(re.search(r"pip install .*--no-deps \.(\s|$)", run) for run in installs), (
        "the Dockerfile does not install the project itself (pip install --no-deps .)")
    for folder in ("dags", "plugins"):
        assert any(re.search(rf"(^|\s){folder}/ /opt/airflow/{folder}/?$", c) for c in copies), (
            f"{folder}/ is not copied into the image's /opt/airflow/{folder}")
    text = json.dumps(project.compose)
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text and "pip install" not in text, (
        "a service installs packages at container start")
    for name, service in project.services.items():
        mounts = [str(v if isinstance(v, str) else v.get("source", "")) for v in service.get("volumes") or []]
        assert not any(m.startswith((".", "/")) for m in mounts), f"{name} bind-mounts host files: {mounts}"


def check_cluster_pins(project: Project) -> None:
    """The CeleryExecutor's packages are in requirements.txt (which the image installs), exactly pinned."""
    pins = project.requirements
    loose = [name for name, version in pins.items() if not version]
    assert not loose, f"requirements.txt has unpinned lines: {loose}"
    provider = pins.get("apache-airflow-providers-celery")
    assert provider and version_tuple(provider) >= MIN_CELERY_PROVIDER, (
        f"apache-airflow-providers-celery {provider}: Airflow 3.3 needs 3.8.3 or later")
    assert "celery" in pins and "redis" in pins, "the Celery and Redis clients are not pinned"


def check_services_present(project: Project) -> None:
    missing = REQUIRED_SERVICES - set(project.services)
    assert not missing, f"services missing: {sorted(missing)}"
    for name, subcommand in AIRFLOW_COMPONENTS.items():
        assert " ".join(argv(project.services[name])) == subcommand, (
            f"{name} runs {argv(project.services[name])}, not `airflow {subcommand}`")


def check_one_image_and_environment(project: Project) -> None:
    common = project.common
    common_env = environment(common)
    assert common_env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", "the common executor is not CeleryExecutor"
    for name, service in project.airflow_services().items():
        assert service.get("image") == common.get("image") and service.get("build") == common.get("build"), (
            f"{name} does not run the image built from the Dockerfile (x-airflow-common)")
        env = environment(service)
        differing = sorted(key for key, value in common_env.items() if env.get(key) != value)
        assert not differing, f"{name} differs from x-airflow-common's environment in {differing}"
    build = common.get("build") or {}
    assert build.get("context") == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile", f"build is {build}"
    for name in DEMO_SERVICES - {"astute-db"}:
        assert project.services[name].get("image") == common.get("image"), f"{name} does not run the project's image"


def check_execution_api_url(project: Project) -> None:
    port = api_server_port(project)
    apiserver = project.services["airflow-apiserver"]
    published = container_ports(apiserver)
    assert port in published, f"airflow-apiserver listens on {port} but publishes {published}"
    assert f"localhost:{port}/" in " ".join(healthcheck_test(apiserver)), "airflow-apiserver's healthcheck probes another port"
    expected = f"http://airflow-apiserver:{port}/execution/"
    for name in project.airflow_services():
        url = project.env_of(name).get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "")
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("http", "airflow-apiserver", port, "/execution/"), (
            f"{name}: AIRFLOW__CORE__EXECUTION_API_SERVER_URL={url!r}, not the api-server service's {expected}")


def check_metadata_and_broker(project: Project) -> None:
    postgres = environment(project.services["postgres"])
    expected = ("postgres", 5432, *(postgres.get(f"POSTGRES_{key}") for key in ("USER", "PASSWORD", "DB")))
    for name in project.airflow_services():
        env = project.env_of(name)
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            assert postgres_url(env.get(key, "")) == expected, f"{name}: {key} is not the postgres service's database"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), f"{name}: result backend"
        broker = urlsplit(env.get("AIRFLOW__CELERY__BROKER_URL", ""))
        assert (broker.scheme, broker.hostname, broker.port or 6379) == ("redis", "redis", 6379), (
            f"{name}: the broker is not the redis service")
    assert 6379 in {int(p) for p in project.services["redis"].get("expose") or []}, "redis does not expose 6379"


def check_secrets_come_from_env(project: Project) -> None:
    raw_common = environment(project.raw["x-airflow-common"])
    common = environment(project.common)
    for key in SECRETS:
        assert raw_common.get(key, "").startswith(f"${{{key}:?"), f"{key} does not come from .env (required)"
        assert common.get(key), f"{key} is empty"
        assert project.env_example.get(key) == "", (
            f".env.example holds a value for {key}: every deployment must make its own")
    try:
        Fernet(common["AIRFLOW__CORE__FERNET_KEY"].encode())
    except ValueError as error:
        raise AssertionError(f"AIRFLOW__CORE__FERNET_KEY: {error}") from None


def check_connections(project: Project) -> None:
    raw_common = environment(project.raw["x-airflow-common"])
    common = environment(project.common)
    for key in CONNECTIONS:
        assert raw_common.get(key, "").startswith(f"${{{key}:?"), f"{key} does not come from .env (required)"
    assert project.env_of("astute-init").get("AIRFLOW_CONN_ASTUTE_DB") == common["AIRFLOW_CONN_ASTUTE_DB"], (
        "astute-init loads another database than the one Airflow reads")
    assert project.env_of("xero-sandbox").get("AIRFLOW_CONN_XERO_DEFAULT") == common["AIRFLOW_CONN_XERO_DEFAULT"], (
        "xero-sandbox registers another app than the one Airflow uses")

    astute = compose_init.airflow_connection("AIRFLOW_CONN_ASTUTE_DB", common["AIRFLOW_CONN_ASTUTE_DB"])
    db = environment(project.services["astute-db"])
    where = (astute["conn_type"], astute.get("host"), int(astute.get("port") or 5432))
    assert where == ("postgres", "astute-db", 5432), f"astute_db does not point at the astute-db service: {where}"
    assert (astute.get("login"), astute.get("password"), astute.get("schema")) == (
        db.get("POSTGRES_USER"), db.get("POSTGRES_PASSWORD"), db.get("POSTGRES_DB")), (
        "astute_db's login, password or database is not astute-db's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB")

    xero = compose_init.airflow_connection("AIRFLOW_CONN_XERO_DEFAULT", common["AIRFLOW_CONN_XERO_DEFAULT"])
    sandbox = project.services["xero-sandbox"]
    args = argv(sandbox)
    port = int(args[args.index("--port") + 1]) if "--port" in args else 8765
    assert xero["conn_type"] == "xero", "xero_default is not of type xero"
    for key in ("api_url", "identity_url"):
        url = urlsplit(xero["extra"].get(key, ""))
        assert (url.hostname, url.port) == ("xero-sandbox", port), (
            f"xero_default's {key} is not the xero-sandbox service's port {port}")
    assert port in {int(p) for p in sandbox.get("expose") or []}, f"xero-sandbox does not expose {port}"
    assert f"localhost:{port}/" in " ".join(healthcheck_test(sandbox)), "xero-sandbox's healthcheck probes another port"


def check_sandbox_accepts_the_connection(project: Project) -> None:
    """The app xero-sandbox registers (from its environment) is the one the workers use, and its refresh token
    reaches the organisations Astute's demo billing entities point at."""
    from xero_sandbox import SandboxBackend
    from xero_sandbox.identity import TokenError

    def xero_default(service: str) -> dict[str, Any]:
        return compose_init.airflow_connection("AIRFLOW_CONN_XERO_DEFAULT",
                                               project.env_of(service)["AIRFLOW_CONN_XERO_DEFAULT"])

    seeded, used = xero_default("xero-sandbox"), xero_default("airflow-worker")
    backend = SandboxBackend()
    tenants = compose_init.seed_sandbox(backend, seeded)
    try:
        app = backend.identity.authenticate_client(used["login"], used["password"])
        answer = backend.identity.refresh(app, used["extra"].get("refresh_token", ""))
    except TokenError as error:
        raise AssertionError(f"the sandbox refuses the workers' xero_default: {error.code}") from None
    reached = set(backend.identity.access_grant(answer.access_token).tenant_ids)
    assert reached == set(compose_init.DEMO_TENANT_IDS.values()) == set(tenants.values()), (
        f"the token reaches {reached}, the demo's billing entities use {set(compose_init.DEMO_TENANT_IDS.values())}")
    assert set(tenants) == {demo_data.AU_ORG, demo_data.NZ_ORG}


def check_pool(project: Project) -> None:
    script = " ".join(argv(project.services[INIT_SERVICE]))
    pool = re.search(r"airflow pools set xero_api (\d+)\b", script)
    assert pool, "airflow-init does not create the xero_api pool"
    slots = int(pool.group(1))
    factor = re.search(r"pools set xero_api <(\d+) × organisations", project.readme)
    assert factor, "README no longer says how to size the xero_api pool"
    organisations = len(compose_init.DEMO_TENANT_IDS)
    assert slots == int(factor.group(1)) * organisations, (
        f"xero_api has {slots} slots; README recommends {factor.group(1)} × {organisations} organisations")
    env = project.env_of("airflow-scheduler")
    task_slots = celery_workers(project) * int(env.get("AIRFLOW__CELERY__WORKER_CONCURRENCY", 16))
    limits = (("the workers' task slots", task_slots),
              ("[core] parallelism", int(env.get("AIRFLOW__CORE__PARALLELISM", 32))),
              ("[core] max_active_tasks_per_dag", int(env.get("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", 16))))
    for limit, value in limits:
        assert slots <= value, f"xero_api's {slots} slots are more than {limit} ({value})"
    assert 'pool="xero_api"' in project.dags, "no DAG uses the pool airflow-init creates"
    assert script.index("airflow db migrate") < pool.start(), "airflow-init sets the pool before migrating the database"


def celery_workers(project: Project) -> int:
    return sum(int((service.get("deploy") or {}).get("replicas", 1)) for service in project.services.values()
               if argv(service)[:2] == ["celery", "worker"] and not service.get("profiles"))


def check_workers(project: Project) -> None:
    assert celery_workers(project) >= 2, f"{celery_workers(project)} Celery worker(s): the issue asks for two or more"


def check_healthchecks(project: Project) -> None:
    for name, service in project.services.items():
        test = healthcheck_test(service)
        if is_one_shot(name):
            assert service.get("restart", "no") == "no", f"{name} is one-shot: it must not be restarted"
        if not needs_healthcheck(name):
            continue
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name} has no healthcheck"


def check_depends_on(project: Project) -> None:
    services = project.services
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            if condition == "service_healthy":
                assert healthcheck_test(services[target]), (
                    f"{name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully":
                assert is_one_shot(target), f"{name} waits for {target} to complete, which never does"
            if not service.get("profiles"):
                assert not services[target].get("profiles"), (
                    f"{name} depends on {target}, which only runs in profile(s) {services[target]['profiles']}")
    for name in AIRFLOW_COMPONENTS:
        deps = depends_on(services[name])
        assert deps.get(INIT_SERVICE) == "service_completed_successfully", f"{name} does not wait for {INIT_SERVICE}"
        assert deps.get("postgres") == deps.get("redis") == "service_healthy", (
            f"{name} does not wait for postgres and redis")
    assert depends_on(services["airflow-worker"]).get("airflow-apiserver") == "service_healthy", (
        "the workers do not wait for the api-server (their execution API)")
    assert depends_on(services[INIT_SERVICE]).get("postgres") == "service_healthy", (
        f"{INIT_SERVICE} does not wait for postgres")

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join(path + (name,))}"
        for target in depends_on(services.get(name, {})):
            visit(target, path + (name,))

    for name in services:
        visit(name, ())


def check_demo_profiles(project: Project) -> None:
    active = {p.strip() for p in project.env_example.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    for name in DEMO_SERVICES:
        profiles = set(project.services[name].get("profiles") or [])
        assert profiles, f"{name} is a demo stand-in but runs in every deployment (give it a profile)"
        assert profiles & active, f".env.example's COMPOSE_PROFILES does not start {name} ({sorted(profiles)})"
    for name in AIRFLOW_COMPONENTS:
        assert not project.services[name].get("profiles"), f"{name} only runs in a profile"


def check_volumes(project: Project) -> None:
    declared = set(project.compose.get("volumes") or {})
    for name, service in project.services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            assert source in declared, f"{name} mounts {source}, not a declared volume"
    for name in project.airflow_services():
        mounts = {str(v) for v in project.services[name].get("volumes") or []}
        assert "airflow-logs:/opt/airflow/logs" in mounts, f"{name} does not share the task logs volume"
        data = project.env_of(name)
        assert any(m.startswith("airflow-data:") and data.get("XERO_REPORT_DIR", "").startswith(m.split(":")[1])
                   for m in mounts), f"{name} writes report pages outside the shared data volume"
    passwords = Path(environment(project.common)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent
    for name in ("airflow-apiserver", INIT_SERVICE):
        assert f"airflow-auth:{passwords}" in {str(v) for v in project.services[name].get("volumes") or []}, (
            f"{name} does not share the UI's password file ({passwords})")


def check_secrets_stay_out_of_git_and_image(project: Project) -> None:
    assert ".env" in project.gitignore, ".env is not in .gitignore"
    assert not any(fnmatch(".env.example", pattern.lstrip("/")) for pattern in project.gitignore), (
        ".gitignore ignores .env.example")
    assert project.dockerignore[:1] == ["*"], ".dockerignore is not an allowlist (first line `*`)"
    for secret in (".env", ".venv", ".pgdata", ".git"):
        reincluded = [p for p in project.dockerignore if p.startswith("!") and fnmatch(secret, p[1:].rstrip("/"))]
        assert not reincluded, f".dockerignore lets {secret} into the build context: {reincluded}"


CHECKS: list[Callable[[Project], None]] = [
    check_schema, check_base_image, check_image_installs_at_build_time, check_cluster_pins,
    check_services_present, check_one_image_and_environment, check_execution_api_url, check_metadata_and_broker,
    check_secrets_come_from_env, check_connections, check_sandbox_accepts_the_connection, check_pool,
    check_workers, check_healthchecks, check_depends_on, check_demo_profiles, check_volumes,
    check_secrets_stay_out_of_git_and_image,
]


# --------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def env_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compose")
    make_env(directory)
    return directory / ".env"


@pytest.fixture(scope="module")
def project(env_path: Path) -> Project:
    return load_project(env_path)


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


def test_compose_config_accepts_the_file(env_path: Path, project: Project) -> None:
    """`docker compose config` where there is Compose; the specification's JSON schema otherwise."""
    cli = compose_cli()
    if cli is None:
        check_schema(project)
        return
    result = subprocess.run(
        [*cli, "--project-directory", str(REPO_ROOT), "--env-file", str(env_path), "-f", str(COMPOSE_FILE),
         "--profile", "debug", "--profile", "flower", "config", "--quiet"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"docker compose config:\n{result.stderr}"
    check_schema(project)


def test_make_env_writes_fresh_secrets_from_the_example(env_path: Path, tmp_path: Path) -> None:
    made = read_env_file(env_path)
    example = read_env_file(ENV_EXAMPLE)
    assert set(made) == set(example)
    assert {k for k in made if made[k] != example[k]} == set(SECRETS), "make-env.sh changed more than the secrets"
    again = make_env(tmp_path)
    assert all(again[k] != made[k] for k in SECRETS), "make-env.sh makes the same secrets twice"
    refused = subprocess.run(["sh", str(MAKE_ENV), str(tmp_path / ".env")], capture_output=True, text=True)
    assert refused.returncode != 0, "make-env.sh overwrote an existing .env"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    """.env.example as it is (secrets empty) is refused, naming the variable: nobody runs on a shared key."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    with pytest.raises(MissingVariable, match="|".join(SECRETS)):
        interpolate(raw, read_env_file(ENV_EXAMPLE))


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_project(project: Project, check: Callable[[Project], None]) -> None:
    check(project)


# --------------------------------------------------------------------------------------------- each check can fail
def _set_env(service: str, key: str, value: str) -> Callable[[Project], None]:
    def mutate(p: Project) -> None:
        p.services[service]["environment"][key] = value
    return mutate


def _replace_in(attribute: str, old: str, new: str) -> Callable[[Project], None]:
    def mutate(p: Project) -> None:
        text = getattr(p, attribute)
        assert old in text, f"mutation target {old!r} not in {attribute}"
        setattr(p, attribute, text.replace(old, new))
    return mutate


def _init_script(old: str, new: str) -> Callable[[Project], None]:
    def mutate(p: Project) -> None:
        command = p.services[INIT_SERVICE]["command"]
        assert old in command[-1]
        command[-1] = command[-1].replace(old, new)
    return mutate


def _xero_connection(service: str, **changes: Any) -> Callable[[Project], None]:
    def mutate(p: Project) -> None:
        connection = json.loads(p.services[service]["environment"]["AIRFLOW_CONN_XERO_DEFAULT"])
        for key, value in changes.items():
            if key in ("login", "password"):
                connection[key] = value
            else:
                connection["extra"][key] = value
        p.services[service]["environment"]["AIRFLOW_CONN_XERO_DEFAULT"] = json.dumps(connection)
    return mutate


def _pop(service: str, key: str) -> Callable[[Project], None]:
    return lambda p: p.services[service].pop(key)


def _set(service: str, **values: Any) -> Callable[[Project], None]:
    return lambda p: p.services[service].update(values)


def _dependency(service: str, target: str, condition: str) -> Callable[[Project], None]:
    return lambda p: p.services[service].setdefault("depends_on", {}).update({target: {"condition": condition}})


IMAGE = "apache/airflow:3.3.2-python3.11"
MUTATIONS: list[tuple[Callable[[Project], None], str, Callable[[Project], None]]] = [
    (check_schema, "unknown service key", _set("redis", restart_policy="always")),
    (check_schema, "bad depends_on condition", _dependency("airflow-scheduler", "postgres", "service_ready")),
    (check_base_image, "other Airflow", _replace_in("dockerfile", IMAGE, "apache/airflow:3.3.1-python3.11")),
    (check_base_image, "other Python", _replace_in("dockerfile", IMAGE, "apache/airflow:3.3.2-python3.12")),
    (check_image_installs_at_build_time, "no project", _replace_in("dockerfile", "--no-deps .", "--no-deps astute-xero")),
    (check_image_installs_at_build_time, "dags not copied", _replace_in("dockerfile", "/opt/airflow/dags/", "/tmp/dags/")),
    (check_image_installs_at_build_time, "pip at start", _set_env("airflow-worker", "_PIP_ADDITIONAL_REQUIREMENTS", "x")),
    (check_image_installs_at_build_time, "bind mount",
     lambda p: p.services["airflow-scheduler"]["volumes"].append("./dags:/opt/airflow/dags")),
    (check_cluster_pins, "old provider",
     lambda p: p.requirements.update({"apache-airflow-providers-celery": "3.8.2"})),
    (check_cluster_pins, "unpinned", lambda p: p.requirements.update({"flower": ""})),
    (check_cluster_pins, "no redis client", lambda p: p.requirements.pop("redis")),
    (check_services_present, "no triggerer", lambda p: p.services.pop("airflow-triggerer")),
    (check_services_present, "wrong command", _set("airflow-dag-processor", command="scheduler")),
    (check_one_image_and_environment, "LocalExecutor", _set_env("airflow-worker", "AIRFLOW__CORE__EXECUTOR", "LocalExecutor")),
    (check_one_image_and_environment, "other Fernet key",
     _set_env("airflow-triggerer", "AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())),
    (check_one_image_and_environment, "other JWT secret", _set_env("airflow-scheduler", "AIRFLOW__API_AUTH__JWT_SECRET", "x")),
    (check_one_image_and_environment, "other connection",
     _set_env("airflow-apiserver", "AIRFLOW_CONN_ASTUTE_DB", "postgres://x@y/z")),
    (check_one_image_and_environment, "other image", _set("airflow-worker", image=IMAGE)),
    (check_one_image_and_environment, "common not Celery",
     lambda p: p.common["environment"].update(AIRFLOW__CORE__EXECUTOR="LocalExecutor")),
    (check_execution_api_url, "localhost",
     _set_env("airflow-worker", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://localhost:8080/execution/")),
    (check_execution_api_url, "api-server moved",
     _set("airflow-apiserver", command="api-server --port 9090", ports=["8080:9090"],
          healthcheck={"test": ["CMD", "curl", "--fail", "http://localhost:9090/api/v2/version"]})),
    (check_execution_api_url, "port not published", _set("airflow-apiserver", ports=["8080:8081"])),
    (check_metadata_and_broker, "broker elsewhere",
     _set_env("airflow-worker", "AIRFLOW__CELERY__BROKER_URL", "redis://localhost:6379/0")),
    (check_metadata_and_broker, "other credentials", _set_env("postgres", "POSTGRES_PASSWORD", "secret")),
    (check_secrets_come_from_env, "fixed Fernet key",
     lambda p: p.raw["x-airflow-common"]["environment"].update(AIRFLOW__CORE__FERNET_KEY="abc")),
    (check_secrets_come_from_env, "example holds a key", lambda p: p.env_example.update(AIRFLOW__API_AUTH__JWT_SECRET="x")),
    (check_secrets_come_from_env, "not a Fernet key",
     lambda p: p.common["environment"].update(AIRFLOW__CORE__FERNET_KEY="not-a-key")),
    (check_connections, "sandbox other app", _xero_connection("xero-sandbox", login="someone-else")),
    (check_connections, "other sandbox port",
     _set("xero-sandbox", command=["python", "-m", "devtools.compose_init", "xero-sandbox", "--port", "9999"])),
    (check_connections, "astute db password", _set_env("astute-db", "POSTGRES_PASSWORD", "other")),
    (check_connections, "astute-init elsewhere",
     _set_env("astute-init", "AIRFLOW_CONN_ASTUTE_DB", '{"conn_type":"postgres","host":"db"}')),
    (check_sandbox_accepts_the_connection, "other secret", _xero_connection("airflow-worker", password="wrong")),
    (check_sandbox_accepts_the_connection, "other refresh token",
     _xero_connection("airflow-worker", refresh_token="unknown")),
    (check_pool, "README's size", _init_script("xero_api 10", "xero_api 20")),
    (check_pool, "no pool", _init_script("airflow pools set xero_api", "airflow pools list #")),
    (check_pool, "beyond the slots", _set_env("airflow-scheduler", "AIRFLOW__CELERY__WORKER_CONCURRENCY", "4")),
    (check_pool, "DAG's pool renamed", _replace_in("dags", 'pool="xero_api"', 'pool="xero"')),
    (check_workers, "one worker", lambda p: p.services["airflow-worker"]["deploy"].update(replicas="1")),
    (check_healthchecks, "no healthcheck", _pop("airflow-triggerer", "healthcheck")),
    (check_healthchecks, "init restarted", _set(INIT_SERVICE, restart="always")),
    (check_depends_on, "unknown service", _dependency("airflow-scheduler", "mysql", "service_healthy")),
    (check_depends_on, "no init wait", lambda p: p.services["airflow-triggerer"]["depends_on"].pop(INIT_SERVICE)),
    (check_depends_on, "healthy without check",
     lambda p: (_dependency("astute-init", "xero-sandbox", "service_healthy")(p), _pop("xero-sandbox", "healthcheck")(p))),
    (check_depends_on, "on a demo service",
     _dependency("airflow-worker", "astute-init", "service_completed_successfully")),
    (check_depends_on, "cycle", _dependency("postgres", INIT_SERVICE, "service_completed_successfully")),
    (check_demo_profiles, "demo always on", _pop("xero-sandbox", "profiles")),
    (check_demo_profiles, "profile not in .env", lambda p: p.env_example.update(COMPOSE_PROFILES="demo-xero")),
    (check_volumes, "logs not shared", _set("airflow-worker", volumes=["airflow-data:/opt/airflow/data"])),
    (check_volumes, "undeclared", lambda p: p.compose["volumes"].pop("airflow-auth")),
    (check_secrets_stay_out_of_git_and_image, ".env tracked", lambda p: p.gitignore.remove(".env")),
    (check_secrets_stay_out_of_git_and_image, ".env in the image", lambda p: p.dockerignore.append("!.env")),
]


@pytest.mark.parametrize("check, how, mutate", MUTATIONS, ids=[f"{c.__name__}-{how}" for c, how, _ in MUTATIONS])
def test_each_check_can_fail(project: Project, check: Callable[[Project], None], how: str,
                             mutate: Callable[[Project], None]) -> None:
    broken = copy.deepcopy(project)
    mutate(broken)
    with pytest.raises(AssertionError):
        check(broken)


def test_every_check_is_shown_failing() -> None:
    assert {check for check, _, _ in MUTATIONS} == set(CHECKS)
