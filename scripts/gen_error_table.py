"""Regenerate the table of error codes in docs/protocol.md from ``causette.errors``.

The table sits between the markers ``<!-- error-codes:start -->`` and
``<!-- error-codes:end -->``; everything else in the file is left as it is.

    python scripts/gen_error_table.py            # rewrite the table in place
    python scripts/gen_error_table.py --check    # exit 1 if the table is out of date

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from causette.errors import CausetteError, all_error_classes

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DOC = REPO_ROOT / "docs" / "protocol.md"
START = "<!-- error-codes:start -->"
END = "<!-- error-codes:end -->"

#: Modules never imported to look for errors: migration scripts run Alembic when imported.
SKIPPED = (".migrations", "__main__")


def import_all() -> list[str]:
    """Import every module of the ``causette`` package: ``all_error_classes`` finds the
    subclasses that have been imported, and errors may be defined anywhere."""
    import causette

    names = ["causette"]
    for info in pkgutil.walk_packages(causette.__path__, "causette."):
        if any(part in info.name for part in SKIPPED):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    return names


HEADER = "| code | HTTP | retryable | message (fr) | message (en) |\n|---|---|---|---|---|\n"


def error_classes() -> list[type[CausetteError]]:
    """Every error class with a code of its own, sorted by code; raise if a code is used twice."""
    import_all()
    classes = all_error_classes()
    counts = Counter(cls.code for cls in classes)
    duplicates = sorted(code for code, n in counts.items() if n > 1)
    if duplicates:
        raise ValueError(f"error codes used by several classes: {', '.join(duplicates)}")
    return sorted(classes, key=lambda cls: cls.code)


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render_table() -> str:
    rows = [
        f"| `{cls.code}` | {cls.status} | {'yes' if cls.retryable else ''} "
        f"| {cell(cls.fr)} | {cell(cls.en)} |\n"
        for cls in error_classes()
    ]
    return HEADER + "".join(rows)


def with_table(doc: str, table: str) -> str:
    """``doc`` with the text between the markers replaced by ``table``."""
    start = doc.find(START)
    end = doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {START} … {END} not found in order")
    return doc[: start + len(START)] + "\n" + table + doc[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    parser.add_argument("--doc", type=Path, default=PROTOCOL_DOC)
    args = parser.parse_args(argv)
    doc: str = args.doc.read_text(encoding="utf-8")
    updated = with_table(doc, render_table())
    if args.check:
        if updated != doc:
            print(f"{args.doc}: the error-code table is out of date; run {__file__}")
            return 1
        return 0
    if updated != doc:
        args.doc.write_text(updated, encoding="utf-8")
        print(f"{args.doc}: error-code table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
