"""Only Dagster's public API: no module of the project imports a private Dagster module
(``dagster._core`` and the like move between releases). import-linter sees external packages
only as a whole, so this is checked here."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_package_imports_a_private_dagster_module():
    private = []
    for package in ("ntsb_assets", "ntsb_api", "ntsb_dashboard"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                private += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                    for n in names
                    if n.split(".")[0].startswith("dagster") and any(p.startswith("_") for p in n.split(".")[1:])
                ]
    assert not private, private
