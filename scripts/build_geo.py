#!/usr/bin/env python3
"""Build ``src/causette/geo/data/fr-geo.json`` from Etalab's découpage administratif.

Usage (from anywhere)::

    python scripts/build_geo.py [SOURCE_DIR] [--output PATH] [--check]

``SOURCE_DIR`` holds ``communes.json``, ``departements.json`` and ``regions.json`` copied unchanged
from the npm package ``@etalab/decoupage-administratif`` (default: ``<repo root>/../shared/data/
fr-geo``). The output is deterministic: the same input gives the same bytes. ``--check`` writes
nothing and exits with status 1 when the committed file is not what the source would give.

The choice rules (which entries become choices for a postal code, in which order) are documented in
the docstring of :mod:`causette.geo`; this script is where they are applied.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "fr-geo"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "causette" / "geo" / "data" / "fr-geo.json"

FORMAT = 1
SOURCE_PACKAGE = "@etalab/decoupage-administratif"
SOURCE_VERSION = "6.0.0"

ACTUELLE = "commune-actuelle"
DELEGUEE = "commune-deleguee"
ASSOCIEE = "commune-associee"
ARRONDISSEMENT = "arrondissement-municipal"


class SourceCommune(msgspec.Struct, frozen=True, rename="camel"):
    code: str
    nom: str
    departement: str
    region: str
    type: str
    codes_postaux: list[str] = msgspec.field(default_factory=list)
    population: int | None = None
    chef_lieu: str | None = None  # déléguée/associée: the commune it belongs to
    commune: str | None = None  # arrondissement municipal: its city


class SourceDepartement(msgspec.Struct, frozen=True):
    code: str
    nom: str
    region: str


class SourceRegion(msgspec.Struct, frozen=True):
    code: str
    nom: str


class BuildError(Exception):
    """The source data breaks an assumption the derived file relies on."""


def attribution(version: str) -> str:
    return (
        f"Géographie : {SOURCE_PACKAGE} {version} (Etalab), d'après le Code officiel géographique "
        "de l'INSEE et la Base officielle des codes postaux de La Poste — données sous Licence "
        "Ouverte / Open Licence 2.0 (Etalab), code du paquet sous licence MIT. Données dérivées "
        "(sélection et mise en forme) par Causette. "
        "https://github.com/etalab/decoupage-administratif"
    )


def sort_name(name: str) -> tuple[str, str]:
    """Accent- and case-insensitive order ("Écouen" beside "Ecully", not after "Z")."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)), name


def is_postal_code(code: str) -> bool:
    return len(code) == 5 and code.isascii() and code.isdigit()


def derive(
    communes: list[SourceCommune],
    departements: list[SourceDepartement],
    regions: list[SourceRegion],
    version: str = SOURCE_VERSION,
) -> dict[str, Any]:
    """The content of the derived file, as plain JSON values with every list in its final order."""
    region_names = {r.code: r.nom for r in regions}
    dep_region: dict[str, str] = {}
    for d in departements:
        if d.region not in region_names:
            raise BuildError(f"département {d.code} names unknown region {d.region!r}")
        dep_region[d.code] = d.region

    by_code = {c.code: c for c in communes if c.type == ACTUELLE}
    if len(by_code) != sum(1 for c in communes if c.type == ACTUELLE):
        raise BuildError("two current communes share an INSEE code")

    # Postal codes an arrondissement municipal covers: its city is not offered there.
    replaced: set[tuple[str, str]] = set()  # (city INSEE code, postal code)
    for c in communes:
        if c.type == ARRONDISSEMENT:
            if c.commune not in by_code:
                raise BuildError(f"arrondissement {c.code} belongs to unknown commune {c.commune}")
            replaced.update((c.commune, cp) for cp in c.codes_postaux)

    rows: dict[str, list[tuple[int, tuple[str, str], list[str]]]] = defaultdict(list)
    for c in communes:
        if c.type not in (ACTUELLE, ARRONDISSEMENT):
            continue
        if c.departement not in dep_region:
            raise BuildError(f"commune {c.code} is in unknown département {c.departement!r}")
        if c.region != dep_region[c.departement]:
            raise BuildError(
                f"commune {c.code} has region {c.region!r}, its département "
                f"{c.departement} has {dep_region[c.departement]!r}"
            )
        for cp in c.codes_postaux:
            if not is_postal_code(cp):
                raise BuildError(f"commune {c.code} has malformed postal code {cp!r}")
            if (c.code, cp) in replaced:
                continue
            row = [c.code, c.nom, c.departement, c.region]
            rows[cp].append((-(c.population or 0), sort_name(c.nom), row))

    postal: dict[str, list[list[str]]] = {}
    for cp, entries in rows.items():
        entries.sort(key=lambda e: (e[0], e[1], e[2][0]))
        postal[cp] = [row for _, _, row in entries]

    # Communes déléguées and associées: names attached to the commune they belong to.
    former: dict[str, set[str]] = defaultdict(set)
    for c in communes:
        if c.type not in (DELEGUEE, ASSOCIEE):
            continue
        parent = by_code.get(c.chef_lieu or "")
        if parent is None:
            raise BuildError(f"{c.type} {c.code} belongs to unknown commune {c.chef_lieu!r}")
        if c.nom != parent.nom:
            former[parent.code].add(c.nom)

    return {
        "attribution": attribution(version),
        "departements": sorted([d.code, d.nom, d.region] for d in departements),
        "format": FORMAT,
        "former": {code: sorted(names, key=sort_name) for code, names in former.items()},
        "postal": postal,
        "regions": sorted([r.code, r.nom] for r in regions),
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def render(doc: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys, one entry (postal code, département, …) per line for diffs."""
    parts: list[str] = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, dict) and value:
            body = ",\n".join(f"{_dump(k)}:{_dump(value[k])}" for k in sorted(value))
            parts.append(f"{_dump(key)}:{{\n{body}\n}}")
        elif isinstance(value, list) and value:
            body = ",\n".join(_dump(item) for item in value)
            parts.append(f"{_dump(key)}:[\n{body}\n]")
        else:
            parts.append(f"{_dump(key)}:{_dump(value)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    if json.loads(text) != doc:  # the layout must not change the content
        raise BuildError("rendering changed the content")
    return text.encode("utf-8")


def build(source: Path, version: str = SOURCE_VERSION) -> bytes:
    communes = msgspec.json.decode(
        (source / "communes.json").read_bytes(), type=list[SourceCommune]
    )
    departements = msgspec.json.decode(
        (source / "departements.json").read_bytes(), type=list[SourceDepartement]
    )
    regions = msgspec.json.decode((source / "regions.json").read_bytes(), type=list[SourceRegion])
    return render(derive(communes, departements, regions, version))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"directory with the three Etalab files (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument(
        "--source-version", default=SOURCE_VERSION, help="package version, for the attribution"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with --output instead of writing it"
    )
    args = parser.parse_args(argv)
    source: Path = args.source
    output: Path = args.output
    if not (source / "communes.json").is_file():
        print(f"build_geo: no communes.json in {source}", file=sys.stderr)
        return 2
    try:
        data = build(source, args.source_version)
    except (BuildError, msgspec.ValidationError) as exc:
        print(f"build_geo: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = output.read_bytes() if output.is_file() else b""
        if current != data:
            print(f"build_geo: {output} is out of date; rebuild it", file=sys.stderr)
            return 1
        print(f"build_geo: {output} is up to date ({len(data):,} bytes)")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    print(f"build_geo: wrote {output} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
