"""Release sources: identify a release (name + SHA-256 of its content) and stream the
rows of each of its tables, from a directory or zip of ``mdb-export`` CSV files or from an
Access file through mdbtools. Nothing here holds a whole table in memory."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MDB_SUFFIXES = {".mdb", ".accdb"}
CSV_SUFFIXES = {".csv", ".txt"}
FLAT_SUFFIXES = {".csv", ".txt", ".xml"}  # one file: NTSB's flat export (lib/flat.py) or CAROL's (lib/carol.py)
# Files a distribution ships beside its tables (LICENSE.txt, README.txt...): part of the
# release (its identity and its archived original), not tables.
DOCUMENT_STEMS = ("readme", "license", "licence", "copying", "notice")


def is_table_file(name: str) -> bool:
    p = Path(name)
    return p.suffix.lower() in CSV_SUFFIXES and not p.stem.lower().startswith(DOCUMENT_STEMS)


CHUNK = 1 << 20
# mdb-export options the project always passes: four-digit years, binary (OLE) as hex
MDB_EXPORT_ARGS = ["-D", "%Y-%m-%d", "-T", "%Y-%m-%d %H:%M:%S", "-b", "hex"]

csv.field_size_limit(1 << 30)

# Bounds on a zip release, checked from its directory before anything is extracted. NTSB's
# own tables compress 2-17 times (the 2008 avall, 1948-2002 and Part 121 exports); a zip
# bomb, thousands of times. The ratio counts for members above RATIO_FROM_BYTES only.
ZIP_MAX_MEMBER_BYTES = 4 << 30
ZIP_MAX_TOTAL_BYTES = 16 << 30
ZIP_MAX_RATIO = 100
RATIO_FROM_BYTES = 1 << 20


class SourceError(Exception):
    """Bad input that stops a release: names the file, table, row and rule."""

    def __init__(self, file: str, table: str | None, row: int | None, rule: str, message: str):
        self.file, self.table, self.row, self.rule, self.message = file, table, row, rule, message
        where = f"{file}" + (f", table {table}" if table else "") + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: [{rule}] {message}")

    def __reduce__(self):  # survives the trip back from a worker process
        return (SourceError, (self.file, self.table, self.row, self.rule, self.message))


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    sha256: str
    size: int
    # mdb | csv_dir | csv_zip, or pre1982_mdb | pre1982_dir | pre1982_zip for the PRE1982 layout
    # (lib/pre1982.py) | flat_csv | flat_txt | flat_xml | carol_csv
    kind: str
    synthetic: bool = False  # written by `ntsb synth` (it holds SYNTHETIC_MARKER)

    @property
    def release_id(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.name).stem if not self.kind.endswith("_dir") else self.name)
        return f"{stem}-{self.sha256[:12]}"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def release_kind(path: Path) -> str:
    from . import carol, flat, pre1982

    if path.is_dir():
        names = [p.name for p in path.iterdir() if p.suffix.lower() in CSV_SUFFIXES]
        return "pre1982_dir" if pre1982.is_layout(names) else "csv_dir"
    suffix = path.suffix.lower()
    if suffix in MDB_SUFFIXES:
        return "pre1982_mdb" if pre1982.is_layout(mdb_table_names(path)) else "mdb"
    if suffix == ".zip":
        names = [m.filename for m in check_zip(path) if not m.is_dir()]
        return "pre1982_zip" if pre1982.is_layout(names) else "csv_zip"

    form = flat.detect(path)
    if form is not None:
        return f"flat_{form}"
    if carol.detect(path):
        return "carol_csv"
    raise SourceError(
        str(path.name),
        None,
        None,
        "release_kind",
        "not a release: expected a .mdb/.accdb file, a .zip or a directory of CSV files, NTSB's flat "
        "AviationData export (.csv, .txt or .xml) or a CAROL download (.csv)",
    )


SYNTHETIC_MARKER = "synth_manifest.json"  # what `ntsb synth` writes beside a generated release's tables


def identify(path: Path) -> ReleaseInfo:
    """Name and content hash. A directory hashes the sorted names and hashes of its CSVs."""
    path = Path(path)
    if not path.exists():
        raise SourceError(str(path), None, None, "release_missing", "no such file or directory")
    kind = release_kind(path)
    if kind.endswith("_dir"):
        files = _csv_files(path)
        if not any(is_table_file(f.name) for f in files):
            raise SourceError(
                str(path),
                None,
                None,
                "empty_release",
                "the folder holds no CSV table (a release is a folder of mdb-export CSV files, "
                "a .zip of them, or an Access file)",
            )
        h = hashlib.sha256()
        size = 0
        for f in files:
            h.update(f"{f.name}\0{_file_sha256(f)}\n".encode())
            size += f.stat().st_size
        return ReleaseInfo(path.name, h.hexdigest(), size, kind, (path / SYNTHETIC_MARKER).is_file())
    synthetic = False
    if kind.endswith("_zip"):
        members = check_zip(path)
        if not any(is_table_file(m.filename) and not m.is_dir() for m in members):
            raise SourceError(path.name, None, None, "empty_release", "the zip holds no CSV table")
        synthetic = any(Path(m.filename).name == SYNTHETIC_MARKER for m in members)
    return ReleaseInfo(path.name, _file_sha256(path), path.stat().st_size, kind, synthetic)


def _csv_files(directory: Path) -> list[Path]:
    check_own_files(directory)
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in CSV_SUFFIXES)


def check_own_file(path: Path, root: Path) -> None:
    """Refuse (SourceError) what a landing zone or a release folder must not hold: a
    symbolic link, a hard link (a file with other names, perhaps outside), a device, pipe or
    socket, or a path that resolves outside ``root``."""
    name = str(path.relative_to(root)) if path != root else path.name
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise SourceError(name, None, None, "unreadable", exc.strerror or str(exc)) from None
    if stat.S_ISLNK(st.st_mode):
        raise SourceError(
            name,
            None,
            None,
            "symlink",
            f"a symbolic link (to {os.readlink(path)}): releases hold only their own files; copy the file in instead",
        )
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise SourceError(name, None, None, "not_a_file", "a device, pipe or socket, not a file")
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        raise SourceError(
            name,
            None,
            None,
            "hard_link",
            f"a hard link (the same file has {st.st_nlink} names, perhaps outside the "
            "landing zone); copy the file in instead",
        )
    if not path.resolve().is_relative_to(root.resolve()):
        raise SourceError(name, None, None, "outside", f"resolves to {path.resolve()}, outside {root}")


def check_own_files(directory: Path) -> None:
    """Every entry under a release folder, at any depth, is the folder's own (check_own_file)."""
    check_own_file(directory, directory.parent)
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        for entry in [*dirnames, *filenames]:
            check_own_file(Path(dirpath) / entry, directory)


def check_zip(path: Path) -> list[zipfile.ZipInfo]:
    """The members of a zip release, refused (SourceError naming the member) when a name is
    absolute or climbs out (``..``), a member is a link, or its size or compression ratio
    passes the bounds above: all decided from the zip's directory, before any extraction."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(path.name, None, None, "bad_zip", str(exc)) from None
    total = 0
    for m in members:
        where = f"{path.name}:{m.filename}"
        parts = m.filename.replace("\\", "/").split("/")
        if m.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", m.filename) or ".." in parts:
            raise SourceError(
                where, None, None, "zip_path", "the member's name is absolute or climbs out of the release (..)"
            )
        if stat.S_ISLNK(m.external_attr >> 16):
            raise SourceError(where, None, None, "zip_link", "the member is a symbolic link")
        if m.file_size > ZIP_MAX_MEMBER_BYTES:
            raise SourceError(
                where,
                None,
                None,
                "zip_size",
                f"{m.file_size:,} bytes uncompressed, above the limit of {ZIP_MAX_MEMBER_BYTES:,}",
            )
        if m.file_size > RATIO_FROM_BYTES and m.file_size > ZIP_MAX_RATIO * max(m.compress_size, 1):
            raise SourceError(
                where,
                None,
                None,
                "zip_ratio",
                f"{m.file_size:,} bytes from {m.compress_size:,} compressed "
                f"({m.file_size / max(m.compress_size, 1):,.0f}:1), above the limit of "
                f"{ZIP_MAX_RATIO}:1 (a zip bomb?)",
            )
        total += m.file_size
        if total > ZIP_MAX_TOTAL_BYTES:
            raise SourceError(
                path.name,
                None,
                None,
                "zip_size",
                f"the members add up to more than {ZIP_MAX_TOTAL_BYTES:,} bytes uncompressed",
            )
    return members


@dataclass(frozen=True)
class RowReject:
    """A row a source could read but not split into the table's fields (a truncated row of a
    flat export): the extraction quarantines it with this rule and reason."""

    rule: str
    reason: str
    original: dict


@dataclass
class TableSource:
    """One table of a release: where it comes from and how to read it."""

    name: str  # table name as delivered (file stem or MDB table name)
    file: str  # what an error message calls the source
    opener: Callable[[], AbstractContextManager[BinaryIO]]  # a binary stream, opened and closed
    mdb_types: dict[str, str] | None = None  # column -> logical type, from mdb-schema

    @contextmanager
    def rows(self) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]], str]]:
        """(header, iterator of (source row number, fields), encoding). Row numbers count
        the header as row 1, as a spreadsheet shows them."""
        with self.opener() as raw:
            encoding = "utf-8"
            if self.mdb_types is None:
                encoding = yield_encoding(raw)
            text = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
            reader = csv.reader(text, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise SourceError(self.file, self.name, 1, "empty_file", "the file is empty (no header row)") from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SourceError(self.file, self.name, 1, "csv_syntax", f"unreadable header: {exc}") from None
            yield header, _numbered(reader, self.file, self.name), encoding


def _numbered(reader, file: str, table: str) -> Iterator[tuple[int, list[str]]]:
    row = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(file, table, row + 1, "csv_syntax", f"{exc} (a truncated or corrupt file?)") from None
        row += 1
        if fields:
            yield row, fields


def yield_encoding(raw) -> str:
    """UTF-8 (BOM allowed) when every byte decodes, else Windows-1252, else Latin-1.
    Reads the stream once and rewinds it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    head = raw.read(3)
    bom = head == codecs.BOM_UTF8
    raw.seek(0)
    try:
        while chunk := raw.read(CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError:
        raw.seek(0)
        try:
            dec = codecs.getincrementaldecoder("cp1252")()
            while chunk := raw.read(CHUNK):
                dec.decode(chunk)
            encoding = "cp1252"
        except UnicodeDecodeError:
            encoding = "latin-1"
    raw.seek(0)
    return encoding


def table_sources(path: Path) -> list[TableSource]:
    """Every table of a release, in the order the release lists them."""
    path = Path(path)
    kind = release_kind(path)
    if kind.startswith("pre1982_"):
        from . import pre1982

        return pre1982.table_sources(_relational_sources(path, kind.removeprefix("pre1982_")))
    if kind in ("csv_dir", "csv_zip", "mdb"):
        return _relational_sources(path, kind.removeprefix("csv_"))
    if kind.startswith("flat_"):
        from . import flat

        return flat.table_sources(path)
    if kind == "carol_csv":
        from . import carol

        return carol.table_sources(path)
    raise AssertionError(kind)


def _relational_sources(path: Path, form: str) -> list[TableSource]:
    """The tables of a folder (``dir``) or ``zip`` of mdb-export CSV files, or of an Access file."""
    if form == "dir":
        return [TableSource(f.stem, f.name, _file_opener(f)) for f in _csv_files(path) if is_table_file(f.name)]
    if form == "zip":
        names = sorted(m.filename for m in check_zip(path) if is_table_file(m.filename) and not m.is_dir())
        return [TableSource(Path(n).stem, f"{path.name}:{n}", _zip_opener(path, n)) for n in names]
    return mdb_table_sources(path)


def _file_opener(f: Path):
    return lambda: open(f, "rb")


def _zip_opener(path: Path, member: str):
    @contextmanager
    def opener():
        # zip members are not seekable: spool to a temporary file (disk, not memory)
        import tempfile

        with zipfile.ZipFile(path) as zf, zf.open(member) as src, tempfile.TemporaryFile() as tmp:
            shutil.copyfileobj(src, tmp, CHUNK)
            tmp.seek(0)
            yield tmp

    return opener


# ---------------------------------------------------------------- MDB via mdbtools

_MDB_TYPES = {
    "text": "string",
    "memo/hyperlink": "string",
    "memo": "string",
    "ole": "string",
    "replication id": "string",
    "binary": "string",
    "long integer": "int",
    "integer": "int",
    "byte": "int",
    "single": "float",
    "double": "float",
    "currency": "float",
    "numeric": "float",
    "datetime": "timestamp",
    "boolean": "bool",
}


def _require_mdbtools() -> None:
    if shutil.which("mdb-export") is None:
        raise SourceError(
            "mdbtools",
            None,
            None,
            "mdbtools_missing",
            "mdbtools is not installed (Debian/Ubuntu: apt-get install -y mdbtools)",
        )


def _run(args: list[str], file: str) -> str:
    proc = subprocess.run(args, capture_output=True)
    if proc.returncode != 0:
        raise SourceError(
            file, None, None, "mdb_read", f"{args[0]} failed: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode("utf-8", errors="replace")


def mdb_table_names(path: Path) -> list[str]:
    _require_mdbtools()
    out = _run(["mdb-tables", "-1", str(path)], path.name)
    return [line for line in out.splitlines() if line.strip()]


def mdb_column_types(path: Path, table: str) -> dict[str, str]:
    """Column types of one table from ``mdb-schema``."""
    out = _run(["mdb-schema", "--no-relations", "-T", table, str(path)], path.name)
    types: dict[str, str] = {}
    for m in re.finditer(
        r"^\s*\[(?P<col>[^\]]+)\]\s+(?P<type>[A-Za-z/ ]+?)(?:\s*\(\d+\))?(?: NOT NULL)?,?\s*$", out, re.MULTILINE
    ):
        types[m["col"]] = _MDB_TYPES.get(m["type"].strip().lower(), "string")
    return types


def mdb_table_sources(path: Path) -> list[TableSource]:
    return [
        TableSource(t, f"{path.name}:{t}", _mdb_opener(path, t), mdb_column_types(path, t))
        for t in mdb_table_names(path)
    ]


def _mdb_opener(path: Path, table: str):
    @contextmanager
    def opener():
        proc = subprocess.Popen(
            ["mdb-export", *MDB_EXPORT_ARGS, str(path), table], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            yield proc.stdout
        finally:
            proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
            code = proc.wait()
        # -SIGPIPE: we stopped reading early (a header-only pass), not an mdb-export failure
        if code not in (0, -13):
            raise SourceError(f"{path.name}:{table}", table, None, "mdb_read", f"mdb-export exited with {code}: {err}")

    return opener
