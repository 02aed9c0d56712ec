"""Comparing and syncing generated file trees (golden/, `micro gen`, `micro gen --check`)."""

from __future__ import annotations

import difflib
import filecmp
import shutil
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def tree(root: Path) -> dict[str, Path]:
    """Every file under `root` by its posix path relative to `root` (caches left out)."""
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(root).parts)
    }


@dataclass
class TreeDiff:
    """How `actual` differs from `expected`: changed files, files only in `actual` (missing
    from `expected`) and files only in `expected` (extra), plus a unified diff of all of them."""

    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.stale or self.missing or self.extra)

    def summary(self) -> str:
        parts = [
            f"{len(names)} {what}"
            for what, names in (
                ("stale", self.stale),
                ("missing", self.missing),
                ("extra", self.extra),
            )
            if names
        ]
        return ", ".join(parts) or "no differences"


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text().splitlines(keepends=True)
    except UnicodeDecodeError:
        return [f"<binary file, {path.stat().st_size} bytes>\n"]


def compare_trees(
    expected: Path, actual: Path, *, old: str = "golden", new: str = "generated"
) -> TreeDiff:
    """Compare two trees byte for byte; the diff's file labels are `old/<name>`, `new/<name>`."""
    want, have = tree(expected), tree(actual)
    result = TreeDiff()
    for name in sorted(want.keys() | have.keys()):
        a, b = want.get(name), have.get(name)
        if a and b:
            if filecmp.cmp(a, b, shallow=False):
                continue
            result.stale.append(name)
        elif b:
            result.missing.append(name)
        else:
            result.extra.append(name)
        before, after = _lines(a), _lines(b)
        result.lines += difflib.unified_diff(before, after, f"{old}/{name}", f"{new}/{name}")
        if not before and not after:
            result.lines.append(f"{name}: {'extra' if a else 'missing'} empty file\n")
    return result


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """A unified diff of what differs between two trees, empty when identical."""
    return compare_trees(expected, actual).lines


def sync_tree(source: Path, target: Path) -> TreeDiff:
    """Make `target` hold exactly the files of `source`: write what changed, delete what is no
    longer there (and directories left empty). Untouched files keep their mtime."""
    changes = compare_trees(target, source)
    for name in changes.stale + changes.missing:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, dest)
    for name in changes.extra:
        (target / name).unlink()
        parent = (target / name).parent
        while parent != target and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return changes
