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


def test_loading_the_definitions_leaves_mlflow_unimported():
    """MLflow's import costs seconds; the processes that load the code location without
    training or predicting (``ntsb ingest``, the daemon) should not pay it. The severity
    model's pyfunc class is still found where the versions registered before it moved look."""
    import subprocess
    import sys

    probe = (
        "import sys, ntsb_assets.definitions; print('mlflow' in sys.modules); "
        "from ntsb_assets.lib.tracking import PyfuncModel; "
        "from ntsb_assets.lib.pyfunc_model import PyfuncModel as Moved; print(PyfuncModel is Moved)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr
