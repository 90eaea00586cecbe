"""The release registry: which releases exist, where they came from, and which files
were duplicates of a release already known. It lives in the lake, beside the data:

    releases/<release_id>/release.json     identity, source location, registration time
    releases/<release_id>/source/...       the original file(s), archived unchanged
    releases/_duplicates/<sha256>-<name>.json   a file whose content was already registered

A landing zone (a local directory or a bucket prefix) holds candidate releases: each
top-level ``.mdb``/``.accdb``/``.zip`` file or folder of CSV files is one release.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .lake import Lake, copy_tree, fetch_tree
from .sources import CSV_SUFFIXES, MDB_SUFFIXES, ReleaseInfo, SourceError, check_own_file, identify

RELEASE_SUFFIXES = MDB_SUFFIXES | {".zip"}
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"


@dataclass
class Release:
    release_id: str
    name: str
    sha256: str
    size: int
    kind: str
    source_uri: str
    registered_at: str

    @property
    def family(self) -> str:
        return source_family(self.name)


def source_family(name: str) -> str:
    """Releases of the same source share a family: digits and month names are masked,
    so ``up01DEC.mdb`` and ``up08JAN.mdb`` are both ``up#mon``."""
    stem = Path(name).stem.lower() if Path(name).suffix.lower() in RELEASE_SUFFIXES else name.lower()
    stem = re.sub(_MONTHS, "mon", stem)
    return re.sub(r"\d+", "#", stem)


def previous_of(lake: Lake, release_id: str) -> Release | None:
    """The release of the same source family registered just before this one."""
    releases = all_releases(lake)
    mine = next((r for r in releases if r.release_id == release_id), None)
    if mine is None:
        return None
    family = source_family(mine.name)
    earlier = [r for r in releases if r.release_id != release_id and source_family(r.name) == family
               and (r.registered_at, r.release_id) < (mine.registered_at, mine.release_id)]
    return earlier[-1] if earlier else None


def _key(release_id: str) -> str:
    return f"releases/{release_id}/release.json"


def all_releases(lake: Lake) -> list[Release]:
    """Every registered release, in registration order."""
    out = [Release(**lake.get_json(k)) for k in lake.list("releases") if k.endswith("/release.json")]
    return sorted(out, key=lambda r: (r.registered_at, r.release_id))


def get_release(lake: Lake, release_id: str) -> Release:
    if not lake.exists(_key(release_id)):
        raise KeyError(f"release {release_id!r} is not registered (is the landing zone scanned?)")
    return Release(**lake.get_json(_key(release_id)))


@dataclass
class Registration:
    release: Release | None          # None when refused
    new: bool
    duplicate_of: str | None = None  # set when the content was registered under another name
    name: str = ""                   # the name the file or folder was offered under
    refused: str | None = None       # why the landing zone's candidate was not registered


def register(lake: Lake, path: Path, source_uri: str | None = None) -> Registration:
    """Register a local release file or folder. Same content, same name: nothing new.
    Same content under another name: recorded as a duplicate, not registered again."""
    info: ReleaseInfo = identify(Path(path))
    for r in all_releases(lake):
        if r.sha256 == info.sha256:
            if r.name != info.name:
                lake.put_json(f"releases/_duplicates/{info.sha256[:12]}-{info.name}.json",
                              {"name": info.name, "source_uri": source_uri or str(Path(path).resolve()),
                               "duplicate_of": r.release_id, "seen_at": _now()})
                return Registration(r, new=False, duplicate_of=r.release_id, name=info.name)
            return Registration(r, new=False, name=info.name)
    rel = Release(info.release_id, info.name, info.sha256, info.size, info.kind,
                  source_uri or str(Path(path).resolve()), _now())
    lake.put_json(_key(rel.release_id), asdict(rel))
    return Registration(rel, new=True, name=info.name)


def archive_source(lake: Lake, rel: Release, local: Path) -> list[str]:
    """Keep the original file(s) in the lake, unchanged, once."""
    prefix = f"releases/{rel.release_id}/source"
    existing = lake.list(prefix)
    if existing:
        return existing
    if local.is_dir():
        return copy_tree(local, lake, f"{prefix}/{rel.name}")
    lake.put_file(f"{prefix}/{rel.name}", local)
    return [f"{prefix}/{rel.name}"]


def source_path(lake: Lake, landing: Lake, rel: Release, workdir: Path) -> Path:
    """A local path to the release's original content: the archived copy in the lake
    (downloaded into ``workdir`` from an object store), else the place it was registered
    from (a local path, or the landing bucket)."""
    prefix = f"releases/{rel.release_id}/source"
    if lake.list(prefix):
        if lake.is_local:
            return Path(lake.full(prefix)) / rel.name
        fetch_tree(lake, prefix, workdir)
        return workdir / rel.name
    if rel.source_uri.startswith("s3://"):
        return fetch_landing_source(landing, rel, workdir)
    src = Path(rel.source_uri.removeprefix("file://"))
    if not src.exists():
        raise FileNotFoundError(f"release {rel.release_id}: source {rel.source_uri} is gone and no archived copy exists")
    return src


def landing_candidates(landing: Lake) -> dict[str, list[str]]:
    """Top-level releases in a landing zone: {name: [keys]}. A top-level file counts when
    it is an Access file or a zip; a top-level folder when it holds CSV files."""
    groups: dict[str, list[str]] = {}
    for key in landing.list(""):
        parts = key.split("/")
        if parts[0].startswith((".", "_")):
            continue
        if len(parts) == 1 and Path(key).suffix.lower() in RELEASE_SUFFIXES:
            groups[key] = [key]
        elif len(parts) == 2 and Path(key).suffix.lower() in CSV_SUFFIXES:
            groups.setdefault(parts[0], []).append(key)
    return dict(sorted(groups.items()))


def scan_landing(landing: Lake, lake: Lake, seen: dict[str, str] | None = None) -> tuple[list[Registration], dict[str, str]]:
    """Register every landing-zone release not seen before. ``seen`` maps a candidate to a
    fingerprint of its files (sizes and modification times) so unchanged candidates are
    not hashed again. Returns the registrations made and the new ``seen``. A candidate that
    is not the zone's own (a link, a device, a path outside it) or a hostile zip is refused,
    reported as a registration with ``refused`` set, and not registered; the others go on."""
    seen = dict(seen or {})
    regs: list[Registration] = []
    for name, keys in landing_candidates(landing).items():
        fingerprint = ";".join(f"{k}:{landing.size(k)}:{_mtime(landing, k)}" for k in keys)
        if seen.get(name) == fingerprint:
            continue
        try:
            if landing.is_local:
                local = Path(landing.full(name))
                check_own_file(local, Path(landing.root))
                regs.append(register(lake, local, landing.uri(name)))
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    for k in keys:
                        target = Path(tmp) / k
                        target.parent.mkdir(parents=True, exist_ok=True)
                        landing.get_file(k, target)
                    regs.append(register(lake, Path(tmp) / name, landing.uri(name)))
        except SourceError as exc:
            regs.append(Registration(None, new=False, name=name, refused=str(exc)))
        seen[name] = fingerprint
    return regs, seen


def fetch_landing_source(landing: Lake, rel: Release, workdir: Path) -> Path:
    """Download a release registered from an object-store landing zone."""
    name = rel.name
    keys = [k for k in landing.list("") if k == name or k.startswith(name + "/")]
    for k in keys:
        target = workdir / k
        target.parent.mkdir(parents=True, exist_ok=True)
        landing.get_file(k, target)
    return workdir / name


def _mtime(lake: Lake, key: str) -> str:
    info = lake.fs.get_file_info(lake.full(key))
    return str(info.mtime_ns or info.mtime or "")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
