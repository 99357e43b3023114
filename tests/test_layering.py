"""Packages depend one way, subpackages show a face, and nothing imports in a circle.

- studyspec and searchspaces below trainables, trainables below orchestrator; bench may use
  them all.
- `trainables/` and `orchestrator/` hold subpackages only (besides `__init__`, `__main__`
  and the CLI entry); each subpackage's `__init__` declares `__all__`, and code outside a
  subpackage imports only names of that `__all__`, never one of its modules.
- Within a package, subpackages depend one way too (`SUBPACKAGES`).
- No import circle among the modules of any package (every import counts: inside
  functions and under `TYPE_CHECKING` too).
Every import of every module is checked, statically."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the project packages it may import
ALLOWED = {
    "searchspaces": {"searchspaces"},
    "studyspec": {"studyspec", "searchspaces"},
    "trainables": {"trainables", "studyspec", "searchspaces"},
    "orchestrator": {"orchestrator", "trainables", "studyspec", "searchspaces"},
}
PROJECT = set(ALLOWED) | {"bench"}
# subpackage -> the subpackages of the same package it may import
SUBPACKAGES = {
    "trainables": {"data": set(), "loops": {"data"}, "plots": {"data", "loops"},
                   "tracking": {"data", "loops"},
                   "tune": {"data", "loops", "plots", "tracking"}},
    "orchestrator": {"study": set(), "results": {"study"}, "run": {"study", "results"},
                     "commands": {"study", "results", "run"}},
}
OWN_MODULES = {"__init__.py", "__main__.py", "cli.py"}


def modules(package: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / package).rglob("*.py"))


def name_of(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every absolute import: `import a.b` gives ("a.b", [])."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imported_packages(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in imports(path)} & PROJECT


def test_every_import_points_down():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in modules(package):
            for target in sorted(imported_packages(path) - allowed):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from orchestrator.run import run_study\n")
    assert imported_packages(module) == {"orchestrator"}


def test_trainables_and_orchestrator_hold_subpackages_with_a_face():
    for package in SUBPACKAGES:
        loose = {path.name for path in (ROOT / package).glob("*.py")} - OWN_MODULES
        assert loose == set(), f"{package}/ has modules of its own: {sorted(loose)}"
        found = {path.name for path in (ROOT / package).iterdir()
                 if (path / "__init__.py").exists()}
        assert found == set(SUBPACKAGES[package]), package
        for sub in found:
            tree = ast.parse((ROOT / package / sub / "__init__.py").read_text())
            assert face(tree), f"{package}/{sub}/__init__.py declares no __all__"


def face(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
            return [element.value for element in node.value.elts]
    return []


def subpackage_of(module: str) -> tuple[str, str] | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in SUBPACKAGES.get(parts[0], {}):
        return parts[0], parts[1]
    return None


def face_violations(path: Path, faces: dict[tuple[str, str], list[str]],
                    home: tuple[str, str] | None) -> list[str]:
    """Imports of a subpackage other than `home` that reach past its face, or into a
    subpackage its own may not use."""
    wrong = []
    for module, names in imports(path):
        target = subpackage_of(module)
        if target is None or target == home:
            continue
        if module != ".".join(target):
            wrong.append(f"imports {module}, a private module of {'.'.join(target)}")
        elif missing := sorted(set(names) - set(faces[target])):
            wrong.append(f"imports {missing} from {module}, not in its __all__")
        if home and home[0] == target[0] and target[1] not in SUBPACKAGES[home[0]][home[1]]:
            wrong.append(f"imports {module}: {'.'.join(home)} may not use {target[1]}")
    return wrong


def all_faces() -> dict[tuple[str, str], list[str]]:
    return {(package, sub): face(ast.parse((ROOT / package / sub / "__init__.py").read_text()))
            for package, subs in SUBPACKAGES.items() for sub in subs}


def test_nothing_imports_past_a_subpackage_face():
    faces, wrong = all_faces(), []
    for package in PROJECT:
        for path in modules(package):
            home = subpackage_of(name_of(path))
            wrong += [f"{path.relative_to(ROOT)} {why}"
                      for why in face_violations(path, faces, home)]
    assert wrong == []


@pytest.mark.parametrize("line, why", [
    ("from trainables.loops.search import run_search", "a private module"),
    ("from trainables.loops import loss_step", "not in its __all__"),
    ("import orchestrator.results.report", "a private module"),
])
def test_the_face_check_sees_a_private_import(tmp_path, line, why):
    module = tmp_path / "m.py"
    module.write_text(f"def f():\n    {line}\n")
    (found,) = face_violations(module, all_faces(), home=None)
    assert why in found


def test_the_face_check_sees_a_subpackage_importing_upwards(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from trainables.tune import study_trainable\n")
    (found,) = face_violations(module, all_faces(), home=("trainables", "data"))
    assert "trainables.data may not use tune" in found


def import_graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (a package's `__init__` stands
    for the package; `from a import b` points at module a.b when b is one)."""
    known = {name_of(path, root) for path in modules(package, root)}
    graph = {}
    for path in modules(package, root):
        edges = set()
        for module, names in imports(path):
            targets = [f"{module}.{name}" for name in names if f"{module}.{name}" in known]
            edges |= set(targets) or ({module} & known)
        graph[name_of(path, root)] = edges - {name_of(path, root)}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_in_any_package():
    found = {package: circles(import_graph(package)) for package in PROJECT}
    assert {package: found_ for package, found_ in found.items() if found_} == {}


def test_the_circle_check_sees_a_circle_behind_type_checking(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    (tmp_path / "p" / "options.py").write_text("X = 1\n")
    (tmp_path / "p" / "space.py").write_text("from typing import TYPE_CHECKING\n"
                                             "if TYPE_CHECKING:\n"
                                             "    from p.supernet import Supernet\n")
    (tmp_path / "p" / "supernet.py").write_text("from p import options\n"
                                                "from p.space import Space\n")
    assert circles(import_graph("p", tmp_path)) == [["p.space", "p.supernet"]]


@pytest.mark.parametrize("package, sub", [(p, s) for p, subs in SUBPACKAGES.items()
                                          for s in subs])
def test_every_name_of_a_face_resolves_to_its_module_s(package, sub):
    """A face imports its names when first used (`trainables.lazy_face`): each name of its
    `__all__` is the object of the module it names, and an unknown name is an
    AttributeError, as for any module. No name is also a module's: importing that module
    would set the package's attribute to the module instead."""
    import importlib

    face_module = importlib.import_module(f"{package}.{sub}")
    tree = ast.parse((ROOT / package / sub / "__init__.py").read_text())
    homes = {alias.asname or alias.name: node.module for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    for name in face(tree):
        assert not (ROOT / package / sub / f"{name}.py").exists(), f"{package}.{sub}.{name}"
        assert getattr(face_module, name) is getattr(importlib.import_module(homes[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        face_module.not_a_name  # noqa: B018


def test_validate_loads_neither_ray_nor_mlflow():
    """`validate` answers in a moment: the faces it goes through do not import Ray, MLflow,
    Optuna or matplotlib (seconds of imports) for it. (SciPy comes with scikit-image's
    sample images, which the quickstart's embedded data is.)"""
    import subprocess
    import sys

    code = ("import sys; from orchestrator.cli import main; "
            "assert main(['validate', 'studies/quickstart.yaml']) == 0; "
            "print(sorted(m for m in ('ray', 'mlflow', 'optuna', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
