"""The house's import rules (DESIGN.md's picture): no import circle anywhere in the package, and
every room imports only the rooms below it. Function-level imports count; imports under
`if TYPE_CHECKING:` (annotations only, never executed) do not."""
import ast
from pathlib import Path

import pytest

import babysit

SRC = Path(babysit.__file__).parent
# Leaves: what everyone shares; they import leaves only.
LEAVES = {"errors", "registry", "layout", "build", "schema", "reference", "activations", "penalties",
          "factories", "losses", "pages"}
# room -> the rooms (besides itself and the leaves) it may import
ALLOWED = {
    "spec": {"data.augment"},  # the augment ops' parameters, a table the spec validates against
    "data": set(),
    "nn": set(),
    "watch": set(),
    "models": {"data", "nn", "spec"},
    "train": {"data", "models", "nn", "spec", "watch"},
    "preflight": {"data", "models", "nn", "spec", "train"},
    "doctor": {"spec", "watch", "train.callbacks"},  # never the Trainer, the checklist or a model builder
    "report": {"spec", "watch", "train.callbacks"},  # the end-of-run report is a callback
    "runs": {"data", "models", "nn", "spec", "train"},
    "sample": set(),
    "session": {"data", "doctor", "models", "nn", "preflight", "report", "spec", "train", "watch"},
    "library": {"doctor", "watch"},
    # the lectures' experiments: above the session, they may use anything below it
    "labs": {"data", "doctor", "models", "nn", "preflight", "report", "runs", "sample", "session", "spec", "train",
             "watch"},
}
# Whatever retrains sits above the session; the command line above everything.
TOP = {"repair", "seeds", "finetune", "lr_race", "search", "cli", "cli_runs", "__init__", "lightning", "cli_labs"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(name: str) -> str:
    """The module a dotted import name refers to (a name imported from a module is that module)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path) -> set[str]:
    """Every babysit module `path` imports, at any depth of its code, except annotation-only ones."""
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(_resolve(a.name) for a in node.names if a.name.startswith("babysit."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("babysit"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                found.add(full if full in MODULES else _resolve(node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _allowed(importer: str, imported: str) -> bool:
    room, target = _room(importer), _room(imported)
    if room in LEAVES:
        return target in LEAVES
    if room == target or target in LEAVES or room in TOP:
        return True
    return any(target == a or imported == f"babysit.{a}" or imported.startswith(f"babysit.{a}.")
               for a in ALLOWED[room])


def _packages(module: str) -> set[str]:
    """The packages whose __init__ runs when `module` is imported (the root's aside)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts))}


def test_every_room_is_placed():
    assert {_room(m) for m in MODULES} <= LEAVES | set(ALLOWED) | TOP


def test_no_module_imports_against_the_direction():
    wrong = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                   if b != "babysit" and not _allowed(a, b))
    assert not wrong, "imports against the direction:\n" + "\n".join(wrong)


def test_the_package_has_no_import_circle():
    # importing a.b.c runs a.b's __init__ too; the root babysit/__init__.py, the public facade that
    # imports everything and that nothing inside the package imports, aside
    graph = {m: {u for t in targets if t != "babysit" for u in {t} | (_packages(t) - _packages(m) - {m})}
             for m, targets in GRAPH.items()}
    state: dict[str, int] = {}

    def cycle_from(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = cycle_from(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = cycle_from(m, [m])
            assert found is None, "import circle: " + " -> ".join(found)


@pytest.mark.parametrize("importer, imported", [("babysit.train.trainer", "babysit.doctor.callback"),
                                                ("babysit.watch.watch", "babysit.doctor"),
                                                ("babysit.spec", "babysit.train.optim"),
                                                ("babysit.doctor.callback", "babysit.train.trainer"),
                                                ("babysit.errors", "babysit.spec")])
def test_the_rule_catches_a_wrong_import(importer, imported):
    assert not _allowed(importer, imported)
