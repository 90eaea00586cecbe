"""NTSB's data dictionary as dbt doc blocks: the column descriptions of the dbt docs site
where NTSB has the text.

The staging models read the raw columns through ``ntsb_col(raw, '<column>', ...)``; for each
column read that way, the dictionary's short description and definition become the doc
block ``ntsb__<table>__<column>``, which the staging and mart ymls use as
``description: "{{ doc('ntsb__events__ev_type') }}"``. The dictionary stays the one place for
that text; the file is generated, never edited:

    python -m ntsb_assets.lib.dictionary_docs          # rewrite dbt_project/models/_ntsb_dictionary.md
    python -m ntsb_assets.lib.dictionary_docs --check  # exit 1 when the file is not current
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DICTIONARY_CSV = REPO / "data" / "sample" / "landing" / "00_reference_avall" / "eADMSPUB_DataDictionary.csv"
STAGING = REPO / "dbt_project" / "models" / "staging"
OUTPUT = REPO / "dbt_project" / "models" / "_ntsb_dictionary.md"
_RAW = re.compile(r"ntsb_raw\('(\w+)'\)")
_COL = re.compile(r"ntsb_col\(raw, '(\w+)'")


def read_dictionary(path: Path = DICTIONARY_CSV) -> dict[tuple[str, str], str]:
    """(table, column), lower case -> "Short description. Definition." (the first row of a
    column that has either; the rows repeat per code)."""
    out: dict[tuple[str, str], str] = {}
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            key = (row["Table"].strip().lower(), row["Column"].strip().lower())
            short, definition = (" ".join((row.get(k) or "").split()) for k in ("short_desc", "Question_Def"))
            if key in out or not (short or definition):
                continue
            text = definition if not short else short.rstrip(".") + "." + (" " + definition if definition else "")
            out[key] = text
    return out


def staging_columns(staging: Path = STAGING) -> list[tuple[str, str]]:
    """(raw table, raw column) of every ``ntsb_col(raw, ...)`` in the staging models."""
    seen: dict[tuple[str, str], None] = {}
    for sql in sorted(staging.glob("*.sql")):
        text = sql.read_text(encoding="utf-8")
        table = _RAW.search(text)
        if table:
            for column in _COL.findall(text):
                seen[(table.group(1).lower(), column.lower())] = None
    return list(seen)


def doc_name(table: str, column: str) -> str:
    return f"ntsb__{table}__{column}"


def render(dictionary: dict[tuple[str, str], str] | None = None) -> str:
    dictionary = read_dictionary() if dictionary is None else dictionary
    lines = [
        "<!-- Generated from NTSB's data dictionary (eADMSPUB_DataDictionary) by",
        "     python -m ntsb_assets.lib.dictionary_docs: do not edit. -->",
        "",
    ]
    for table, column in sorted(k for k in staging_columns() if k in dictionary):
        text = dictionary[(table, column)].replace("{", "(").replace("}", ")")  # no Jinja in NTSB's text
        lines += [
            f"{{% docs {doc_name(table, column)} %}}",
            f"{text} (NTSB data dictionary: {table}.{column})",
            "{% enddocs %}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is not current: python -m ntsb_assets.lib.dictionary_docs", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"{OUTPUT}: {text.count('{% docs ')} doc blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
