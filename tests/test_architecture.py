"""The shape of the package, checked from its source: imports run one way, the store never
sees a plate, and the only way to look a plate up is the policy-checked search."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import privplate

PACKAGE = Path(privplate.__file__).resolve().parent


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join(["privplate", *parts]), path, ast.parse(path.read_text(encoding="utf-8"))


def _imported(module: str, tree: ast.Module) -> Iterator[str]:
    """Every privplate module ``tree`` imports, at top level or inside a function."""
    package = module  # the project uses absolute imports; relative ones resolve from here
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("privplate"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("privplate"):
                yield target
                yield from (f"{target}.{a.name}" for a in node.names)


def _top(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None
    top = parts[1]
    return top if (PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file() else None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, _, tree in _modules():
        source = _top(module)
        if source is None:
            continue
        for target in _imported(module, tree):
            dest = _top(target)
            if dest is not None and dest != source:
                graph.setdefault(source, set()).add(dest)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_top_level_parts() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The check above can fail: a made-up graph with a loop is reported.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {
        module: set(_imported(module, tree))
        for module, _, tree in _modules()
        if module == prefix or module.startswith(prefix + ".")
    }


def test_the_store_never_canonicalizes_or_tokenizes_a_plate() -> None:
    # The store may know a token's size; it may not turn text into a canonical plate or a
    # token (the function plate_token), which would let it see or probe plates.
    for module, _, tree in _modules():
        if not module.startswith("privplate.store"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("privplate.tokens") for a in node.names), module
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("privplate"):
                assert not (node.module or "").startswith("privplate.tokens.canonical"), module
                names = {a.name for a in node.names}
                assert not names & {"canonical_plate", "plate_token", "canonical"}, module


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("privplate.jurisdiction", ("privplate.",)),
        ("privplate.vision", ("privplate.tokens", "privplate.store", "privplate.edge")),
        ("privplate.api", ("privplate.vision", "privplate.ceremony", "privplate.cli")),
        ("privplate.store", ("privplate.policy", "privplate.api", "privplate.services")),
        ("privplate.retention", ("privplate.deployment", "privplate.services")),
        ("privplate.transparency", ("privplate.deployment", "privplate.services")),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    allowed = ("privplate.errors",) if layer == "privplate.jurisdiction" else ()
    for module, targets in _imports_of(layer).items():
        for target in targets:
            if target.startswith(allowed) and allowed:
                continue
            assert not target.startswith(forbidden), f"{module} imports {target}"


def test_nothing_imports_the_cli() -> None:
    for module, _, tree in _modules():
        if module.startswith("privplate.cli"):
            continue
        assert not any(t.startswith("privplate.cli") for t in _imported(module, tree)), module


def test_import_privplate_loads_no_database_or_server_code() -> None:
    code = (
        "import sys, privplate\n"
        "heavy = ('sqlalchemy', 'fastapi', 'uvicorn', 'starlette', 'httpx', 'alembic', 'cv2',"
        " 'onnxruntime', 'fast_plate_ocr')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- the only search is the policy-checked one --------------------------------------------------

#: Every public callable of the package that takes a plate, and why it is not a search.
TAKES_A_PLATE = {
    "privplate.api.routes.hotlists:EntryBody": "a hotlist entry to add, in a POST body",
    "privplate.api.routes.hotlists:EntryOut": "a hotlist entry revealed on request (audited)",
    "privplate.api.routes.queries:QueryIn": "the search request, in a POST body",
    "privplate.console.pages.operator:add_entry": "a hotlist entry from the console form (POST)",
    "privplate.cli.server:query": "the CLI search: QueryService.run, or filed for approval",
    "privplate.edge.labels:LabelledImage": "ground truth of an evaluation photo",
    "privplate.edge.pipeline:Stats": "counts of plates read at the edge",
    "privplate.hotlists.service:EntryIn": "a hotlist entry to add (encrypted at once)",
    "privplate.hotlists.service:EntryInfo": "a hotlist entry revealed on request (audited)",
    "privplate.hotlists.tokens:HotlistTokens.tokenize_new": "tokens of new hotlist entries",
    "privplate.policy.queries:QueryRequest": "the search request QueryService.run checks",
    "privplate.settings:Settings": "its `plates` section: how plates are canonicalized",
    "privplate.settings:EdgeSettings": "`plate_formats`/`plate_patterns`: formats, never plates",
    "privplate.vision.priors:count_characters": "character statistics of format priors",
}


def _public_callables() -> Iterator[tuple[str, object]]:
    for info in pkgutil.walk_packages(privplate.__path__, "privplate."):
        if ".migrations" in info.name:
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an extra that this environment lacks
            pytest.skip(f"{info.name} needs {exc.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}:{name}", obj
            elif inspect.isclass(obj):
                yield f"{module.__name__}:{name}", obj
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{module.__name__}:{name}.{attr}", member


def test_every_public_callable_that_takes_a_plate_is_known() -> None:
    takes: set[str] = set()
    for name, obj in _public_callables():
        try:
            params = inspect.signature(obj).parameters  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if any("plate" in p for p in params):
            takes.add(name)
    assert takes == set(TAKES_A_PLATE)


def test_no_public_lookup_beside_the_query_service() -> None:
    names = {name.rsplit(":", 1)[1].rsplit(".", 1)[-1] for name, _ in _public_callables()}
    for word in ("lookup", "lookup_plate", "search", "find_plate", "reads_of"):
        assert word not in names
    from privplate.deployment import Deployment
    from privplate.services import Services

    for cls in (Deployment, Services):
        assert not hasattr(cls, "lookup") and not hasattr(cls, "search")


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def test_the_token_lookup_is_reached_only_from_a_checked_and_recorded_query() -> None:
    users = [
        (module, node.name)
        for module, _, tree in _modules()
        if module != "privplate.store.lookup"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and _calls(node, "find_reads")
    ]
    assert users == [("privplate.policy.queries", "_matches")]
    tree = next(t for m, _, t in _modules() if m == "privplate.policy.queries")
    callers = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _calls(n, "_matches")
    ]
    assert [c.name for c in callers] == ["run"]
    (run,) = callers
    lookup_line = _calls(run, "_matches")[0].lineno
    # The policy check (screen, which every search passes, also one filed for approval) and
    # the query's record come first, in the same function.
    assert min(c.lineno for c in _calls(run, "screen")) < lookup_line
    (screen,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "screen"]
    assert _calls(screen, "_check") and _calls(screen, "_quota_problem")
    assert min(c.lineno for c in _calls(run, "_record")) < lookup_line
    assert any(isinstance(n, ast.Raise) and n.lineno < lookup_line for n in ast.walk(run))


def test_every_exported_name_resolves() -> None:
    for name in privplate.__all__:
        assert getattr(privplate, name) is not None, name
    with pytest.raises(AttributeError):
        _ = privplate.lookup  # type: ignore[attr-defined]
