"""CLI for people, devices, hotlists and queries; no plate in any output but the hotlist's."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.devices import DeviceKey
from tests import factories
from tests.privacy import dump_database, hits_in_bytes

runner = CliRunner()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_users_devices_hotlists_and_a_query(home: Path, tmp_path: Path) -> None:
    d = str(home)
    assert invoke("cameras", "add", "gate-1", "--dir", d)[0] == 0
    code, out = invoke(
        "users",
        "add",
        "ivy",
        "--role",
        "investigator",
        "--password-stdin",
        "--dir",
        d,
        stdin="correct horse battery staple\n",
    )
    assert code == 0, out
    code, out = invoke("users", "add", "ivy", "--role", "investigator", "--no-password", "--dir", d)
    assert code == 1 and "already exists" in out
    code, out = invoke("users", "add", "x", "--role", "device", "--no-password", "--dir", d)
    assert code == 65 and "role must be one of" in out
    code, out = invoke(
        "users",
        "add",
        "shorty",
        "--role",
        "auditor",
        "--password-stdin",
        "--dir",
        d,
        stdin="short\n",
    )
    assert code == 65 and "12 to 1024 characters" in out
    assert "ivy" in invoke("users", "list", "--dir", d)[1]
    code, out = invoke("users", "add", "scraper", "--role", "auditor", "--no-password", "--dir", d)
    code, out = invoke("users", "api-key", "scraper", "--dir", d)
    assert code == 0 and "ppk_" in out

    key = DeviceKey.generate("edge-1")
    code, out = invoke(
        "devices",
        "add",
        "edge-1",
        "--public-key",
        key.public_key.hex(),
        "--camera",
        "gate-1",
        "--dir",
        d,
    )
    assert code == 0, out
    code, out = invoke(
        "devices", "add", "edge-2", "--public-key", "zz", "--camera", "gate-1", "--dir", d
    )
    assert code == 65 and "64 hex digits" in out

    assert invoke("hotlist", "create", "stolen", "--source", "stolen-vehicle", "--dir", d)[0] == 0
    csv = tmp_path / "list.csv"
    csv.write_text("plate,reason,case_number\n3HOT333,stolen,SPD-9\n", encoding="utf-8")
    code, out = invoke("hotlist", "import", str(csv), "--list", "stolen", "--dir", d)
    assert code == 0 and "1 entries added" in out
    code, out = invoke("hotlist", "import", str(csv), "--list", "stolen", "--dir", d)
    assert code == 1 and "already live entries" in out and "3HOT333" not in out
    assert "stolen-vehicle" in invoke("hotlist", "list", "--dir", d)[1]

    with Deployment.open(home) as dep:
        factories.ingest(dep, [factories.read(dep, "3HOT333", camera_id="gate-1")])
    why = "Vehicle reported stolen from the lot on Elm Street."
    code, out = invoke(
        "query",
        "--plate",
        "3HOT333",
        "--purpose",
        "stolen-vehicle",
        "--case",
        "SPD-9",
        "--why",
        why,
        "--user",
        "ivy",
        "--password-stdin",
        "--dir",
        d,
        stdin="correct horse battery staple\n",
    )
    assert code == 0, out
    assert "1 matching reads" in out and "gate-1" in out
    assert "3HOT333" not in out
    code, out = invoke(
        "query",
        "--plate",
        "3HOT333",
        "--purpose",
        "immigration-enforcement",
        "--case",
        "X-1",
        "--why",
        why,
        "--user",
        "ivy",
        "--password-stdin",
        "--dir",
        d,
        stdin="correct horse battery staple\n",
    )
    assert code == 77 and "forbidden" in out
    code, out = invoke(
        "query",
        "--plate",
        "3HOT333",
        "--purpose",
        "stolen-vehicle",
        "--case",
        "X-1",
        "--why",
        why,
        "--user",
        "ivy",
        "--password-stdin",
        "--dir",
        d,
        stdin="wrong password!\n",
    )
    assert code == 77 and "password is wrong" in out
    with Deployment.open(home) as dep:
        assert hits_in_bytes(dump_database(dep.settings.resolved_database_url), ["3HOT333"]) == []
