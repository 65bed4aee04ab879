"""The documentation keeps step with the code: docs/protocol.md lists every error code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from causette.errors import CausetteError, all_error_classes

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DOC = REPO_ROOT / "docs" / "protocol.md"
SCRIPT = REPO_ROOT / "scripts" / "gen_error_table.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_error_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def classes(gen: ModuleType) -> list[type[CausetteError]]:
    """Every error class, once every module that defines some is imported."""
    imported = gen.import_all()
    assert "causette.store.errors" in imported
    assert "causette.core.service" in imported
    return all_error_classes()


def documented() -> dict[str, tuple[str, str]]:
    """code -> (French message, English message), read from the table in docs/protocol.md."""
    doc = PROTOCOL_DOC.read_text(encoding="utf-8")
    start = doc.index("<!-- error-codes:start -->")
    end = doc.index("<!-- error-codes:end -->")
    rows: dict[str, tuple[str, str]] = {}
    for line in doc[start:end].splitlines():
        match = re.match(r"^\| `([a-z0-9_]+)` \|", line)
        if not match:
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
        rows[match.group(1)] = (cells[-2], cells[-1])
    return rows


def test_error_codes_are_unique(classes: list[type[CausetteError]]) -> None:
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in codes)


def test_every_error_has_both_messages(classes: list[type[CausetteError]]) -> None:
    for cls in classes:
        assert cls.fr.strip(), cls.code
        assert cls.en.strip(), cls.code
        assert cls.fr != cls.en, cls.code
        # The same placeholders in both languages.
        assert set(re.findall(r"{(\w+)}", cls.fr)) == set(re.findall(r"{(\w+)}", cls.en))


def test_the_protocol_lists_exactly_the_error_codes_with_their_messages(
    classes: list[type[CausetteError]],
) -> None:
    table = documented()
    expected = {cls.code: (" ".join(cls.fr.split()), " ".join(cls.en.split())) for cls in classes}
    assert sorted(table) == sorted(expected), "run scripts/gen_error_table.py"
    assert table == expected, "run scripts/gen_error_table.py"


def test_the_table_is_what_the_script_generates(gen: ModuleType) -> None:
    assert gen.main(["--check"]) == 0, "run scripts/gen_error_table.py"


def test_the_script_rewrites_only_the_table(gen: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "protocol.md"
    doc.write_text(
        "# Titre\n\n<!-- error-codes:start -->\n| old |\n<!-- error-codes:end -->\n\nFin.\n",
        encoding="utf-8",
    )
    assert gen.main(["--check", "--doc", str(doc)]) == 1
    assert gen.main(["--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Titre\n\n<!-- error-codes:start -->\n| code |")
    assert text.endswith("<!-- error-codes:end -->\n\nFin.\n")
    assert "| old |" not in text
    assert "| `pseudonym_taken` | 409 |" in text
    assert gen.main(["--check", "--doc", str(doc)]) == 0
