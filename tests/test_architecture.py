"""The layering ARCHITECTURE.md describes, checked on the source: imports point one way only."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdk"
FAMILY_NAMES = ("movenet", "blazepose", "posenet", "rtmpose", "person-detector", "person_detector")


def module_name(path: Path) -> str:
    if path.is_relative_to(SDK):
        parts = ("edgepose", *path.relative_to(SDK).with_suffix("").parts)
    else:
        top = path.relative_to(REPO).parts[0]
        prefix = {"bindings": "edgepose.bindings", "converters": "edgepose.converters"}.get(top, top)
        parts = (prefix, *path.relative_to(REPO / top).with_suffix("").parts)
    return ".".join(p for p in parts if p != "__init__")


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules `path` imports (module-level only when asked: lazy imports inside functions are allowed
    where a layer hands work to a higher one on demand)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


# For each layer: the edgepose modules it may import at module level. The leaves import only leaves.
LEAVES = (
    "edgepose.errors",
    "edgepose.results",
    "edgepose.keypoints",
    "edgepose.geometry",
    "edgepose.image",
    "edgepose.resampling",
    "edgepose.pillow_bilinear",
)
ALLOWED = {
    "edgepose.bindings": ("edgepose.errors", "edgepose.bindings"),
    "edgepose.assets": (
        *LEAVES,
        "edgepose.bindings",
        "edgepose.assets",
        "edgepose.io.atomic",
        "edgepose.models.families",
    ),
    "edgepose.models": (*LEAVES, "edgepose.bindings", "edgepose.assets", "edgepose.models"),
    "edgepose.pipelines": (*LEAVES, "edgepose.bindings", "edgepose.assets", "edgepose.models", "edgepose.pipelines"),
    "edgepose.tracking": (*LEAVES, "edgepose.models.base", "edgepose.tracking"),
    # On top of the pose stream: poses in, angles and reps out; no model, no pipeline.
    "edgepose.fitness": (*LEAVES, "edgepose.fitness"),
    # The Ray actor pool: jobs come to it from the CLI; it knows none of them.
    "edgepose.cluster": ("edgepose.errors", "edgepose.bindings.native_stderr", "edgepose.cluster"),
}


def allowed(module: str, imported: str, rules: tuple[str, ...]) -> bool:
    return not imported.startswith("edgepose") or any(imported == r or imported.startswith(r + ".") for r in rules)


def test_layers_import_only_downwards():
    bad = []
    for layer, rules in ALLOWED.items():
        folder = REPO / "bindings" if layer == "edgepose.bindings" else SDK / layer.split(".")[1]
        for path in sources(folder):
            bad += [
                f"{module_name(path)} -> {m}"
                for m in imports(path, top_level_only=True)
                if not allowed(module_name(path), m, rules)
            ]
    assert not bad, bad


def test_bindings_import_nothing_of_the_sdk_but_its_errors():
    for path in sources(REPO / "bindings"):
        outside = {m for m in imports(path) if not allowed("", m, ALLOWED["edgepose.bindings"])}
        assert not outside, (path.name, outside)


def test_leaves_import_only_leaves():
    for name in LEAVES:
        path = SDK / f"{name.split('.')[1]}.py"
        assert all(allowed(name, m, LEAVES) for m in imports(path)), (path.name, imports(path))


def test_sdk_has_few_top_level_modules():
    assert len(list(SDK.glob("*.py"))) <= 12, sorted(p.name for p in SDK.glob("*.py"))


def test_the_estimator_names_no_model_family():
    text = (SDK / "estimator.py").read_text().lower()
    assert not [f for f in FAMILY_NAMES if f in text]


def test_runtime_never_imports_the_converters_or_the_tests():
    # `edgepose convert` (cli/convert.py) imports the converters lazily, inside the command.
    for path in sources(SDK) + sources(REPO / "bindings"):
        found = {m for m in imports(path, top_level_only=True) if m.startswith(("edgepose.converters", "tests"))}
        assert not found, (path.name, found)


def test_benchmarks_import_edgepose_and_common_only():
    for path in sources(REPO / "benchmarks"):
        local = {m.split(".")[0] for m in imports(path)} - {"edgepose", "common"}
        assert "tests" not in local and "conftest" not in local, (path.name, local)


def test_every_runtime_package_is_installed():
    # The package list in pyproject.toml is explicit: a new sdk/ package left out of it works in an
    # editable install and is missing from every real one.
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"edgepose." + p.parent.relative_to(SDK).as_posix().replace("/", ".") for p in SDK.glob("*/__init__.py")}
    assert on_disk <= listed, sorted(on_disk - listed)


def test_ray_and_asyncssh_are_imported_only_where_they_are_used():
    """The optional engines stay behind their options: ray in the cluster package (for --ray), asyncssh in
    the fleet bench (for --host)."""
    homes = {"ray": "edgepose.cluster", "asyncssh": "edgepose.bench.fleet"}
    bad = []
    for folder in (SDK, REPO / "bindings"):
        for path in sources(folder):
            module = module_name(path)
            for name in imports(path):
                top = name.split(".")[0]
                if top in homes and not module.startswith(homes[top]):
                    bad.append(f"{module} -> {name}")
    assert bad == []
