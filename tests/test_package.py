"""The package as installed and as read: one top-level name in site-packages; an engine that neither
prints, nor reads the environment, nor names a flag of the command; imports without cycles."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = {"engine": "focusdrop.engine", "bridge": "focusdrop.bridge", "scripts": "focusdrop.scripts"}


def modules() -> dict[str, ast.Module]:
    """{dotted module name: its syntax tree} for every Python file of the package."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package,) + parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imported(tree: ast.Module, top_level_only: bool) -> set[str]:
    """The focusdrop modules a module imports (at its top level only, or anywhere in it)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("focusdrop."):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("focusdrop."))
    return names


def test_pip_install_puts_one_top_level_package_in_site_packages(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path),
                          str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    top = {p.name for p in tmp_path.iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"focusdrop", "bin"}, top
    installed = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "focusdrop").rglob("*") if p.is_file()}
    assert "focusdrop/bridge/hotfolder/service.py" in installed and "focusdrop/engine/pipeline.py" in installed
    assert any(p.startswith("focusdrop/scripts/lightroom/FocusDrop.lrplugin/") for p in installed)


def test_the_engine_imports_nothing_of_the_bridge():
    for name, tree in modules().items():
        if name.startswith("focusdrop.engine"):
            assert not {m for m in imported(tree, False) if m.startswith("focusdrop.bridge")}, name


def test_no_import_cycle():
    """Imports inside functions count too: a deferred import that closes a loop is still a loop."""
    trees = modules()
    graph = {name: {m for m in imported(tree, False) if m in trees and m != name} for name, tree in trees.items()}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in graph[name]:
            if state.get(other) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(other):] + [other]))
            if other not in state:
                visit(other, path + [other])
        state[name] = 2
    for name in graph:
        if name not in state:
            visit(name, [name])


FLAG = re.compile(r"(^|[\s(`'\"])--[a-z][a-z-]+")


@pytest.mark.parametrize("name, tree", [(n, t) for n, t in modules().items() if n.startswith("focusdrop.engine")])
def test_the_engine_neither_prints_nor_reads_the_environment_nor_names_a_flag(name, tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{name}:{node.lineno} prints"
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("environ", "getenv", "putenv"), f"{name}:{node.lineno} reads the environment"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not _is_docstring(node, tree):
            assert not FLAG.search(node.value), f"{name}:{node.lineno} names a flag: {node.value!r}"


def _is_docstring(node: ast.Constant, tree: ast.Module) -> bool:
    owners = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    return any(o.body and isinstance(o.body[0], ast.Expr) and o.body[0].value is node for o in owners)


def test_the_command_line_is_built_without_the_image_libraries():
    """`focusdrop --help` (and the parsing of every command) imports no image library: each command
    imports what it runs when it runs (0.12 s to start, against 0.39 s when the parser pulled in OpenCV)."""
    code = ("import sys; from focusdrop.bridge import cli; cli.build_parser(); "
            "print(sorted(m for m in ('numpy', 'cv2', 'tifffile', 'psd_tools', 'rawpy', 'skimage') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
