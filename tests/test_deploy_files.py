"""The deployment files under deploy/ (Containerfile, compose, Kubernetes, systemd, README)
agree with privplate: every `privplate ...` line they run exists with those options, every
PRIVPLATE_* variable is a setting, every port and probe matches, the keys are where the
settings look for them, and the containers run hardened. No container engine runs here:
these files are parsed, never built or started (deploy/README.md says what ran instead)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest

from privplate.settings import Settings
from tests.conftest import ON_POSTGRES
from tests.deploy_checks import (
    DEPLOY,
    Image,
    build_stages_run,
    check_command,
    env_problems,
    get_routes,
    is_privplate,
    k8s_objects,
    parse_command,
    parse_containerfile,
    parse_unit,
    readme_commands,
    setting_problem,
    settings_of,
    shell_commands,
    unit_commands,
    unit_environment,
    usage_error,
    yaml_documents,
)

CONTAINERFILE = DEPLOY / "container" / "Containerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
CADDYFILE = DEPLOY / "compose" / "Caddyfile"
IMAGE_TAG = "privplate:0.1.0"
HOME = PurePosixPath("/var/lib/privplate")


@pytest.fixture(scope="module")
def image() -> Image:
    return parse_containerfile(CONTAINERFILE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = yaml_documents(COMPOSE)
    return doc


def _flag(argv: list[str], name: str) -> str | None:
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.partition("=")[2]
    return None


def _uid(user: str) -> int:
    return int(str(user).split(":")[0])


def _under(path: PurePosixPath, mounts: dict[PurePosixPath, bool], *, writable: bool) -> bool:
    return any(path.is_relative_to(m) and (w or not writable) for m, w in mounts.items())


# -- the checker itself catches real mistakes ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["privplate", "serve", "--wokers", "2"], "has no option --wokers"),
        (["privplate", "migrat", "--dir", "/d"], "has no command 'migrat'"),
        (["privplate", "retention", "run", "--every", "60"], "has no option --every"),
        (["privplate", "edge", "eval", "--images", "photos"], "needs --labels"),
        (["privplate", "serve", "--port"], "`privplate serve --port` needs a value"),
        (["privplate", "audit"], "`privplate audit` needs a subcommand"),
        (["privplate", "migrate", "extra"], "takes 0 argument(s)"),
    ],
)
def test_a_wrong_command_line_is_flagged(argv: list[str], expected: str) -> None:
    problems = check_command(argv, "deploy/example")
    assert any(expected in p and p.startswith("deploy/example: ") for p in problems), problems


def test_right_command_lines_pass() -> None:
    for argv in (
        ["privplate", "serve", "--host", "0.0.0.0", "--port", "8470", "--workers=2"],  # noqa: S104
        ["privplate", "edge", "run", "--source", "rtsp://cam/s", "--no-display", "--dir", "/d"],
        ["privplate", "retention", "run", "--interval", "60"],
        ["privplate", "report", "--days", "30", "--out", "r.md"],
        ["/opt/privplate/bin/privplate", "--help"],
    ):
        assert check_command(argv, "example") == [], argv


def test_shell_lines_find_the_privplate_commands() -> None:
    found = list(
        shell_commands("pip install x && /opt/v/bin/privplate --help >/dev/null; ls /x/privplate")
    )
    assert found == [["/opt/v/bin/privplate", "--help"]]
    assert list(shell_commands("sudo -u privplate /opt/p/privplate doctor --dir /d | cat")) == [
        ["/opt/p/privplate", "doctor", "--dir", "/d"]
    ]


def test_a_variable_that_is_no_setting_is_flagged() -> None:
    assert setting_problem("PRIVPLATE_SERVER__PORT") is None
    assert setting_problem("PRIVPLATE_RETENTION__WINDOWS__NON_HIT_READS") is None
    assert setting_problem("PRIVPLATE_SERVER__PROT") == "server has no field 'prot'"
    assert setting_problem("PRIVPLATE_EPOCH_SECONDS__X") == "epoch_seconds is not a section"
    assert env_problems("PRIVPLATE_SERVER_URL PRIVPLATE_HOME", "f") == []
    (problem,) = env_problems("x PRIVPLATE_DATABSE_URL=y", "deploy/f")
    assert problem.startswith("deploy/f: PRIVPLATE_DATABSE_URL is neither a setting")


# -- every command line and variable in deploy/ ------------------------------------------------


def _all_commands(image: Image, compose: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every privplate process the files start, with the image's entrypoint
    put in front of a compose command or a Kubernetes container's args."""
    yield "Containerfile ENTRYPOINT/CMD", image.argv(None, None)
    for run in build_stages_run(CONTAINERFILE):
        for argv in shell_commands(run):
            yield "Containerfile RUN", argv
    for name, service in compose["services"].items():
        if service.get("image") == IMAGE_TAG:
            yield (
                f"compose.yaml {name}",
                image.argv(service.get("entrypoint"), service.get("command")),
            )
    for file, docs in k8s_objects().items():
        for doc in docs:
            for container in _containers(doc):
                if container["image"].partition(":")[0] == "privplate":
                    argv = image.argv(container.get("command"), container.get("args"))
                    yield f"k8s/{file} {container['name']}", argv
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for argv in unit_commands(parse_unit(unit)):
            yield f"systemd/{unit.name}", argv


def test_every_command_line_exists(image: Image, compose: dict[str, Any]) -> None:
    problems: list[str] = []
    checked = 0
    for where, argv in _all_commands(image, compose):
        if is_privplate(argv[0]):
            checked += 1
            problems += check_command(argv, where)
    assert problems == []
    # the Containerfile's, its build check, init, migrate, 3 servers, 3 k8s, 4 units
    assert checked >= 14


def test_every_readme_command_exists() -> None:
    readme = DEPLOY / "README.md"
    problems: list[str] = []
    commands = list(readme_commands(readme.read_text()))
    for number, argv in commands:
        problems += check_command(argv, f"deploy/README.md:{number}", strict=False)
    assert problems == []
    assert len(commands) > 20


def test_every_privplate_variable_is_a_setting() -> None:
    problems: list[str] = []
    files = [p for p in sorted(DEPLOY.rglob("*")) if p.is_file()]
    for path in files:
        problems += env_problems(path.read_text(), str(path.relative_to(DEPLOY.parent)))
    assert problems == []


# -- the image -------------------------------------------------------------------------------


def test_the_image_runs_the_server_unprivileged(image: Image) -> None:
    argv = image.argv(None, None)
    assert argv[:2] == ["privplate", "serve"]
    assert _flag(argv, "--dir") == str(HOME)
    assert _flag(argv, "--host") == "0.0.0.0"  # noqa: S104 - all of the container's interfaces
    assert image.expose == {int(_flag(argv, "--port") or 0)}
    assert int(_flag(argv, "--workers") or 0) >= 2
    assert _uid(image.user) > 0
    assert image.env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert image.env.get("PRIVPLATE_HOME") == str(HOME)
    assert [v for v in image.volumes] == [str(HOME / "keys")]
    installs = " ".join(build_stages_run(CONTAINERFILE))
    assert "pip install '.[server,postgres]'" in installs


def test_the_healthcheck_asks_a_real_route_on_the_server_port(image: Image) -> None:
    (url,) = re.findall(r"http://127\.0\.0\.1:(\d+)(/[a-z]*)", " ".join(image.healthcheck))
    port, path = url
    assert {int(port)} == image.expose
    assert path in get_routes()


def test_the_build_context_keeps_secrets_out() -> None:
    ignore = (DEPLOY.parent / ".dockerignore").read_text().split()
    assert ignore[ignore.index("**") :][:1] == ["**"], "everything excluded first"
    for needed in ("privplate/", "retention/", "models/", "pyproject.toml", "README.md"):
        assert f"!{needed}" in ignore
    assert "**/*.key" in ignore
    assert "**/*.db" in ignore


# -- compose ---------------------------------------------------------------------------------


def _compose_privplate(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == IMAGE_TAG}


def _compose_servers(image: Image, compose: dict[str, Any]) -> dict[str, list[str]]:
    servers = {}
    for name, service in _compose_privplate(compose).items():
        argv = image.argv(service.get("entrypoint"), service.get("command"))
        if argv[1:2] == ["serve"]:
            servers[name] = argv
    return servers


def test_compose_services_are_hardened(image: Image, compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("read_only") is True, name
        assert "ALL" in service.get("cap_drop", []), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
    for name, service in _compose_privplate(compose).items():
        assert _uid(service["user"]) == _uid(image.user), name
        assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"]), name  # noqa: S108
        assert service["build"]["dockerfile"] == "deploy/container/Containerfile"
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert (context / service["build"]["dockerfile"]).resolve() == CONTAINERFILE.resolve()


def test_compose_runs_migrate_before_several_servers(image: Image, compose: dict[str, Any]) -> None:
    services = compose["services"]
    servers = _compose_servers(image, compose)
    assert len(servers) >= 2
    migrate = [n for n, s in _compose_privplate(compose).items() if s["command"][0] == "migrate"]
    assert migrate == ["migrate"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in services["db"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    for name, argv in servers.items():
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert _flag(argv, "--port") == str(next(iter(image.expose))), name
        assert int(_flag(argv, "--workers") or 1) >= 2, name


def _compose_mounts(service: dict[str, Any]) -> dict[PurePosixPath, bool]:
    mounts: dict[PurePosixPath, bool] = {}
    for volume in service.get("volumes", []):
        _, target, *mode = volume.split(":")
        mounts[PurePosixPath(target)] = mode != ["ro"]
    for secret in service.get("secrets", []):
        target = secret if isinstance(secret, str) else secret.get("target", secret["source"])
        mounts[PurePosixPath("/run/secrets") / target] = False
    return mounts


def test_compose_keys_are_where_the_settings_look(
    image: Image, compose: dict[str, Any], tmp_path: Path
) -> None:
    toml = (COMPOSE.parent / "privplate.toml").read_text()
    defined = set(compose["secrets"])
    for name, service in _compose_privplate(compose).items():
        mounts = _compose_mounts(service)
        assert mounts[HOME / "privplate.toml"] is False, f"{name}: privplate.toml read-only"
        for secret in service.get("secrets", []):
            assert (secret if isinstance(secret, str) else secret["source"]) in defined
        env = {k: str(v) for k, v in service["environment"].items()}
        settings = settings_of(toml, env, tmp_path / name)
        assert settings.resolved_database_url.startswith("postgresql+psycopg://")
        assert ":" not in settings.database_url.split("//")[1].split("@")[0], "no password"
        pgpass = PurePosixPath(env["PGPASSFILE"])
        assert _under(pgpass, mounts, writable=False), f"{name}: PGPASSFILE is not mounted"
        if name == "migrate":
            continue  # migrate opens no key
        kek = HOME / settings.kek_file
        assert _under(kek, mounts, writable=True), f"{name}: {kek} is not on a writable volume"
        for key in (settings.audit_signing_key_file, settings.server.secret_file):
            assert _under(HOME / key, mounts, writable=False), f"{name}: {key} is not mounted"
    keys_volumes = {
        v.split(":")[0]
        for s in _compose_servers(image, compose)
        for v in compose["services"][s]["volumes"]
        if v.split(":")[1] == str(HOME / "keys")
    }
    assert keys_volumes == {"keys"}, "every server shares the one keys volume"
    assert "keys" in compose["volumes"]


def test_compose_proxy_forwards_to_every_server_with_tls(
    image: Image, compose: dict[str, Any]
) -> None:
    services = compose["services"]
    servers = _compose_servers(image, compose)
    caddy = CADDYFILE.read_text()
    (upstreams,) = re.findall(r"^\s*reverse_proxy ([^{]+)\{", caddy, re.MULTILINE)
    targets = {u.rsplit(":", 1)[0]: int(u.rsplit(":", 1)[1]) for u in upstreams.split()}
    assert set(targets) == set(servers), "the proxy reaches every server and nothing else"
    assert set(targets.values()) == image.expose
    (health,) = re.findall(r"^\s*health_uri (\S+)", caddy, re.MULTILINE)
    assert health == "/readyz" and health in get_routes()
    assert re.search(r"^\{\$PUBLIC_HOST\} \{", caddy, re.MULTILINE), "a TLS site, not :80"
    assert "flush_interval -1" in caddy, "the alert stream is not buffered"
    proxy = services["proxy"]
    assert {"443:443", "80:80"} <= set(proxy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    address = proxy["networks"]["backend"]["ipv4_address"]
    for name in servers:
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == address, name
        assert "ports" not in services[name], f"{name} is reachable only through the proxy"
    assert compose["networks"]["backend"]["internal"] is True


# -- Kubernetes ------------------------------------------------------------------------------


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(doc)
    return [*spec.get("initContainers", []), *spec.get("containers", [])] if spec else []


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def _objects(kind: str) -> list[dict[str, Any]]:
    return [d for docs in k8s_objects().values() for d in docs if d["kind"] == kind]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] != "In" or labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.fixture(scope="module")
def server() -> dict[str, Any]:
    (deployment,) = _objects("Deployment")
    return deployment


def _server_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_k8s_manifests_are_namespace_agnostic_and_listed() -> None:
    (kustomization,) = yaml_documents(DEPLOY / "k8s" / "kustomization.yaml")
    listed = set(kustomization["resources"])
    apart = {"migrate-job.yaml", "init-job.yaml", "secrets.example.yaml"}
    assert listed | apart == set(k8s_objects()), "every manifest is applied one way or another"
    assert not listed & apart
    readme = (DEPLOY / "README.md").read_text()
    for file in apart:
        assert f"k8s/{file}" in readme, f"deploy/README.md says when to apply {file}"
    for file, docs in k8s_objects().items():
        for doc in docs:
            assert "namespace" not in doc["metadata"], file


def _pod_hardening(doc: dict[str, Any], uid: int) -> list[str]:
    """What a pod template lacks of the hardening every privplate pod has."""
    name = doc["metadata"]["name"]
    spec = _pod_spec(doc) or {}
    pod = spec.get("securityContext", {})
    problems = []
    wanted = {"runAsNonRoot": True, "runAsUser": uid, "seccompProfile": {"type": "RuntimeDefault"}}
    problems += [f"{name}: pod {k} is not {v}" for k, v in wanted.items() if pod.get(k) != v]
    if "fsGroup" in pod:
        problems.append(f"{name}: fsGroup adds group bits to the 0600 key files")
    for key in ("automountServiceAccountToken", "enableServiceLinks"):
        if spec.get(key) is not False:
            problems.append(f"{name}: {key} is not false")
    for container in _containers(doc):
        where = f"{name}/{container['name']}"
        sc = container.get("securityContext", {})
        wanted = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        problems += [f"{where}: {k} is not {v}" for k, v in wanted.items() if sc.get(k) != v]
        for kind in ("requests", "limits"):
            if set(container.get("resources", {}).get(kind, {})) != {"cpu", "memory"}:
                problems.append(f"{where}: no cpu and memory {kind}")
    return problems


def test_k8s_pods_are_hardened(image: Image) -> None:
    pods = [d for docs in k8s_objects().values() for d in docs if _pod_spec(d)]
    assert {d["kind"] for d in pods} == {"Deployment", "Job"}
    problems = [p for doc in pods for p in _pod_hardening(doc, _uid(image.user))]
    assert problems == []


def test_the_hardening_check_catches_a_writable_root(image: Image, server: dict[str, Any]) -> None:
    broken = copy.deepcopy(server)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del container["resources"]["limits"]
    broken["spec"]["template"]["spec"]["securityContext"]["fsGroup"] = 10470
    assert _pod_hardening(broken, _uid(image.user)) == [
        "privplate-server: fsGroup adds group bits to the 0600 key files",
        "privplate-server/server: readOnlyRootFilesystem is not True",
        "privplate-server/server: no cpu and memory limits",
    ]


def test_k8s_server_ports_and_probes_agree(image: Image, server: dict[str, Any]) -> None:
    container = _server_container(server)
    argv = image.argv(container.get("command"), container.get("args"))
    (port,) = container["ports"]
    assert port["containerPort"] == int(_flag(argv, "--port") or 0)
    assert {port["containerPort"]} == image.expose
    named = {port["name"]: port["containerPort"]}
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    for kind, probe in probes.items():
        assert probe["path"] in get_routes(), f"{kind} asks {probe['path']}, which is no route"
        assert named.get(probe["port"], probe["port"]) == port["containerPort"], kind
    assert server["spec"]["replicas"] >= 2
    assert server["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {e["name"]: e for e in container["env"]}["FORWARDED_ALLOW_IPS"]["value"]


def test_k8s_service_ingress_pdb_and_policies_select_the_servers(
    image: Image, server: dict[str, Any]
) -> None:
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert _selects(server["spec"]["selector"], labels)
    container = _server_container(server)
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    (service,) = _objects("Service")
    assert _selects({"matchLabels": service["spec"]["selector"]}, labels)
    (service_port,) = service["spec"]["ports"]
    target = service_port["targetPort"]
    assert named.get(target, target) in image.expose
    (ingress,) = _objects("Ingress")
    assert ingress["spec"]["tls"], "TLS at the ingress"
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["number"] == service_port["port"]
    (pdb,) = _objects("PodDisruptionBudget")
    assert _selects(pdb["spec"]["selector"], labels)
    policies = _objects("NetworkPolicy")
    (for_servers,) = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
    assert set(for_servers["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (allowed,) = for_servers["spec"]["ingress"]
    assert [p["port"] for p in allowed["ports"]] == [next(iter(image.expose))]
    assert all(peer.get("podSelector") for peer in allowed["from"]), "only the ingress's pods"
    egress_ports = {p["port"] for rule in for_servers["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {5432, 53}
    for job in _objects("Job"):
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        assert not _selects(pdb["spec"]["selector"], job_labels)
        assert any(_selects(p["spec"]["podSelector"], job_labels) for p in policies), job


def _k8s_mounts(doc: dict[str, Any], container: dict[str, Any]) -> dict[PurePosixPath, bool]:
    spec = _pod_spec(doc)
    assert spec is not None
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts: dict[PurePosixPath, bool] = {}
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in volumes, f"{container['name']} mounts unknown {mount['name']}"
        mounts[PurePosixPath(mount["mountPath"])] = not mount.get("readOnly", False)
    return mounts


def test_k8s_keys_secrets_and_config_are_where_the_settings_look(tmp_path: Path) -> None:
    (configmap,) = _objects("ConfigMap")
    toml = configmap["data"]["privplate.toml"]
    secrets = {s["metadata"]["name"]: s["stringData"] for s in _objects("Secret")}
    claims = {c["metadata"]["name"]: c for c in _objects("PersistentVolumeClaim")}
    (kek_claim,) = claims.values()
    assert kek_claim["spec"]["accessModes"] == ["ReadWriteMany"], "every server rotates it"
    for doc in [*_objects("Deployment"), *_objects("Job")]:
        spec = _pod_spec(doc)
        assert spec is not None
        for volume in spec["volumes"]:
            if "secret" in volume:
                items = {i["key"] for i in volume["secret"]["items"]}
                assert items <= set(secrets[volume["secret"]["secretName"]])
            if "configMap" in volume:
                assert volume["configMap"]["name"] == configmap["metadata"]["name"]
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        for container in spec["containers"]:
            where = f"{doc['metadata']['name']}/{container['name']}"
            env: dict[str, str] = {}
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], where
                    env[item["name"]] = "postgresql+psycopg://privplate@postgresql/privplate"
                else:
                    env[item["name"]] = item["value"]
            assert "PRIVPLATE_DATABASE_URL" in env, where
            settings = settings_of(toml, env, tmp_path / where.replace("/", "-"))
            mounts = _k8s_mounts(doc, container)
            assert mounts[HOME / "privplate.toml"] is False, where
            assert PurePosixPath("/tmp") in mounts, where  # noqa: S108 - the pod's tmpfs
            if container["name"] == "migrate":
                continue  # migrate opens no key
            kek = HOME / settings.kek_file
            assert _under(kek, mounts, writable=True), f"{where}: {kek} is not on a volume"
            (kek_mount,) = [
                m for m in container["volumeMounts"] if kek.is_relative_to(m["mountPath"])
            ]
            kek_volume = {v["name"]: v for v in spec["volumes"]}[kek_mount["name"]]
            assert "persistentVolumeClaim" in kek_volume, f"{where}: the KEK is on the shared claim"
            for key in (settings.audit_signing_key_file, settings.server.secret_file):
                assert _under(HOME / key, mounts, writable=False), f"{where}: {key} not mounted"
        for init in spec.get("initContainers", []):
            copied = [PurePosixPath(w) for w in init["command"] if w.startswith("/secrets/")]
            assert {p.name for p in copied} == {"audit-signing.key", "server.key"}
            assert init["command"][:3] == ["install", "-m", "0600"], "0600: privplate's rule"


def test_kustomize_builds_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    kinds = re.findall(r"^kind: (\w+)$", out.stdout, re.MULTILINE)
    assert sorted(kinds) == sorted(
        [
            "ConfigMap",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "Ingress",
        ]
    )


# -- systemd ---------------------------------------------------------------------------------


EDGE_UNIT = DEPLOY / "systemd" / "privplate-edge.service"
EDGE_TOML = DEPLOY / "edge" / "edge.toml"
EDGE_SETTINGS = DEPLOY / "edge" / "privplate.toml"
#: What the edge unit must keep (deploy/README.md, "Edge devices", lists why).
EDGE_HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "DevicePolicy": "closed",
    "ProtectProc": "invisible",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictRealtime": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
    "Restart": "always",
    "StandardOutput": "journal",
    "StandardError": "journal",
}


def test_edge_unit_runs_the_cameras_of_an_edge_toml_hardened() -> None:
    """The unit's command line, parsed by the real CLI, runs `edge run --config` on the
    example's install path, as the unprivileged user, with every hardening line kept."""
    unit = parse_unit(EDGE_UNIT)
    service = {k: v[-1] for k, v in unit["Service"].items()}
    (argv,) = unit_commands(unit)
    path, params = parse_command(argv)
    assert path == ["privplate", "edge", "run"]
    assert params["source"] is None and params["camera"] is None  # not the one-camera form
    assert params["config"] == Path("/etc/privplate/edge.toml")
    assert params["display"] is False
    home = PurePosixPath(str(params["home"]))
    assert unit_environment(unit)["PRIVPLATE_HOME"] == str(home)
    assert service["User"] == "privplate" or service.get("DynamicUser") == "yes"
    missing = {k: v for k, v in EDGE_HARDENING.items() if service.get(k) != v}
    assert missing == {}, f"privplate-edge.service lacks {missing}"
    # The spool is all it writes (edge.spool_file's default, edge/spool.db) ...
    spool = home / "edge"
    assert PurePosixPath(service["ReadWritePaths"]) == spool
    assert PurePosixPath(Settings().edge.spool_file).parent == PurePosixPath("edge")
    # ... it may open cameras and nothing else of /dev; it never gives up restarting.
    assert service["DeviceAllow"] == "char-video4linux rw"
    assert unit["Unit"]["StartLimitIntervalSec"] == ["0"]
    assert int(service["RestartSec"]) > 0
    assert PurePosixPath(service["ExecStart"].split()[0]).name == "privplate"
    # Camera passwords live in edge.toml (0640, group privplate), not in the unit.
    assert "://" not in EDGE_UNIT.read_text()


def test_the_unit_line_parser_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(usage_error()):
        parse_command(["privplate", "edge", "run", "--confg", "/etc/privplate/edge.toml"])
    with pytest.raises(usage_error()):
        parse_command(["privplate", "edge", "runn"])


def test_the_example_edge_toml_loads_with_three_kinds_of_camera(tmp_path: Path) -> None:
    from privplate.edge.config import load_edge_config

    config = load_edge_config(EDGE_TOML)
    sources = config.sources
    assert len(sources) == 3 and len({s.camera for s in sources}) == 3
    kinds = [s.source.partition("://")[0] if "://" in s.source else s.source for s in sources]
    assert kinds == ["rtsp", "http", "0"]  # RTSP, HTTP MJPEG, the first USB device
    assert all(s.max_fps for s in sources) and all(s.motion for s in sources)
    assert sum(s.roi is not None and not s.roi.whole for s in sources) >= 2
    # The settings the example's cameras run with: the box's example privplate.toml.
    settings = settings_of(EDGE_SETTINGS.read_text(), {}, tmp_path / "box")
    assert settings.edge.detector == "yolov8n-plate-384"
    assert [s.fps(settings.edge) for s in sources] == [5.0, 4.0, 3.0]
    # The install lines put both where the unit and the settings look.
    readme = (DEPLOY / "README.md").read_text()
    assert "deploy/edge/edge.toml /etc/privplate/edge.toml" in readme
    assert "deploy/edge/privplate.toml /var/lib/privplate-edge/privplate.toml" in readme


def test_the_readme_enrols_with_a_pinned_key() -> None:
    readme = (DEPLOY / "README.md").read_text()
    enrols = [
        argv
        for _, argv in readme_commands(readme)
        if argv[1:3] == ["edge", "enrol"] and len(argv) > 3  # not prose naming the command
    ]
    assert enrols, "deploy/README.md shows no `privplate edge enrol`"
    for argv in enrols:
        assert check_command(argv, "deploy/README.md") == []
        _, params = parse_command(argv)
        assert params["server"].startswith("https://") and params["server_key"] and params["code"]


def test_units_parse_as_systemd_reads_them(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    program = shutil.which("privplate") or str(Path(__file__).parents[1] / ".venv/bin/privplate")
    names = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        # Where the units expect the venv, this machine has its own; EnvironmentFile= names a
        # file made on the device.
        text = unit.read_text().replace("/opt/privplate/.venv/bin/privplate", program)
        text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")
        (tmp_path / unit.name).write_text(text)
        names.append(str(tmp_path / unit.name))
    out = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    mentions = [line for line in out.stderr.splitlines() if str(tmp_path) in line]
    assert mentions == [], "\n".join(mentions)


# -- the Kubernetes layout, run as processes ---------------------------------------------------


def test_the_kubernetes_layout_runs_as_processes(
    image: Image, tmp_path: Path, database_url: str
) -> None:
    """The pods' steps on this machine, paths mapped into tmp_path: the init container's copy
    of the Secret keys, the init Job, the migrate Job and the server, with the ConfigMap's
    privplate.toml; the server then writes nothing but keys/ in its directory."""
    from tests.cluster_support import PRIVPLATE, free_port

    home, secret_keys, made = tmp_path / "home", tmp_path / "run-keys", tmp_path / "made"
    secret_keys.mkdir(mode=0o700)
    home.mkdir()
    (configmap,) = _objects("ConfigMap")
    toml = configmap["data"]["privplate.toml"].replace("/run/privplate/keys", str(secret_keys))
    (home / "privplate.toml").write_text(toml)
    subprocess.run([PRIVPLATE, "init", "--dir", str(made)], check=True, capture_output=True)

    def mapped(argv: list[str]) -> list[str]:
        places = {"/secrets/": f"{made}/keys/", "/run/privplate/keys": str(secret_keys)}
        places[str(HOME)] = str(home)
        pattern = "|".join(map(re.escape, places))
        rest = [re.sub(pattern, lambda m: places[m[0]], word) for word in argv[1:]]
        return [PRIVPLATE if is_privplate(argv[0]) else argv[0], *rest]

    env = {**os.environ, "PRIVPLATE_DATABASE_URL": database_url}
    (init_job,) = [j for j in _objects("Job") if j["metadata"]["name"] == "privplate-init"]
    (copy_keys,) = init_job["spec"]["template"]["spec"]["initContainers"]
    subprocess.run(mapped(copy_keys["command"]), check=True)
    assert {p.name: p.stat().st_mode & 0o777 for p in secret_keys.iterdir()} == {
        "audit-signing.key": 0o600,
        "server.key": 0o600,
    }
    for job in sorted(_objects("Job"), key=lambda j: j["metadata"]["name"] != "privplate-init"):
        (container,) = job["spec"]["template"]["spec"]["containers"]
        argv = mapped(image.argv(container.get("command"), container.get("args")))
        done = subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert (home / "keys" / "kek.key").stat().st_mode & 0o777 == 0o600
    (deployment,) = _objects("Deployment")
    argv = mapped(image.argv(None, _server_container(deployment)["args"]))
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"  # this machine is shared: no other interface
    if not ON_POSTGRES:
        refused = subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode != 0
        assert "several workers need PostgreSQL" in refused.stderr
        return
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    _serve_until_ready(argv, env, port)
    after = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    written = set(after) - set(before)
    assert all(p.startswith("keys/") for p in written), written
    assert "keys" in before, "the shared keys volume is the only place the server writes"


def _serve_until_ready(argv: list[str], env: dict[str, str], port: int) -> None:
    """Start the server, wait for /readyz 200, check /healthz, stop it."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the server never turned ready")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
