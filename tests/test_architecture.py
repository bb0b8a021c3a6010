"""The package's shape, as docs/design.md draws it: layers without circles, no module reaching
into another's private names, one seam to providers, and a library that never needs the CLI."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "llmroute"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every import, deferred ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def internal_edges() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, tree in mods.items():
        for target, names in imports(tree):
            # `from llmroute.cli import ask` imports the submodule `llmroute.cli.ask`
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods] or [target]
            for t in targets:
                if t in mods and t != name and t != "llmroute" and not name.startswith(t + "."):
                    edges[name].add(t)
    return edges


def test_no_import_circles() -> None:
    edges = internal_edges()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_no_module_uses_another_modules_private_names() -> None:
    offences = []
    for name, tree in modules().items():
        imported_modules = set()
        for target, names in imports(tree):
            if target.startswith("llmroute"):
                offences += [f"{name}: from {target} import {n}" for n in names if _private(n)]
                imported_modules.add(target.rsplit(".", 1)[-1])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id not in {"self", "cls"}
            ):
                offences.append(f"{name}: {node.value.id}.{node.attr}")
    assert offences == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_library_never_imports_the_cli() -> None:
    for name, tree in modules().items():
        if name.startswith("llmroute.cli") or name == "llmroute.__main__":
            continue  # `python -m llmroute` is the CLI
        targets = {t for t, _ in imports(tree)}
        assert not any(t.startswith("llmroute.cli") for t in targets), name
        assert not targets & {"typer", "rich"} and not any(
            t.startswith("rich.") for t in targets
        ), f"{name} renders: Typer and Rich belong to llmroute.cli"


def test_openai_clients_are_built_only_behind_the_upstream_seam() -> None:
    builders = {"AsyncOpenAI", "OpenAI", "DefaultAsyncHttpxClient"}
    for name, tree in modules().items():
        built = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        } | {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        if built & builders:
            assert name == "llmroute.upstream", f"{name} builds an HTTP client of its own"


# docs/design.md's module map, bottom up: a module imports from its own layer or below.
LAYERS = (
    "errors failures keys rate clock attempt jsontext timespan percentiles",  # values
    "config quirks environment pools",  # config
    "learned signals budget cooldowns classify request",  # pure decisions
    "state setup",  # state
    "http1 upstream sse health pacing turns",  # seams
    "engine assembly streaming mapping router checkup status requestlog",  # engine
    "batch bench chat gateway",  # features
    "cli __main__",  # the command line
)


def layer_of(module: str) -> int:
    top = module.split(".")[1]
    for index, names in enumerate(LAYERS):
        if top in names.split():
            return index
    raise AssertionError(f"{module} is in no layer: add it to docs/design.md and LAYERS")


def test_modules_import_only_from_their_layer_or_below() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in internal_edges().items()
        if module != "llmroute"  # the package's lazy exports
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_command_line_starts_without_heavy_imports() -> None:
    """Every call of a shell loop pays start-up: the SDK, the ASGI stack, Redis and Rich's
    tables load inside the commands that use them, never to parse the command line."""
    import subprocess
    import sys

    probe = "import sys, llmroute.cli.app; print('\\n'.join(sys.modules))"
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True).stdout.split())  # fmt: skip
    heavy = {"openai", "httpx", "httpx2", "starlette", "uvicorn", "redis", "rich.table"}
    assert loaded & heavy == set()
    assert not {m for m in loaded if m.startswith(("llmroute.gateway", "llmroute.engine"))}
