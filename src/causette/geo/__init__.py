"""French geography: postal code → commune(s), départements and regions.

The data is ``data/fr-geo.json``, derived by ``scripts/build_geo.py`` from Etalab's
``@etalab/decoupage-administratif`` 6.0.0 (INSEE Code officiel géographique and La Poste's Base
officielle des codes postaux, Licence Ouverte 2.0; package code MIT — see ``data/ATTRIBUTION.md``).
Nothing is read at import time and no data lives in module globals: the application calls
:meth:`Geo.load` once at start (a few tens of milliseconds) and passes the :class:`Geo` around.

Choice rules (what the entry form offers for a postal code)
-----------------------------------------------------------
* Every ``commune-actuelle`` is offered under each of its postal codes. A commune is identified
  by its INSEE code, which is unique among the choices.
* Paris, Lyon and Marseille: the ``arrondissement-municipal`` entries replace the city for the
  postal codes they cover — 75011 offers only "Paris 11e Arrondissement" (INSEE 75111), never
  "Paris" as well; 75016 and 75116 both give "Paris 16e Arrondissement". In the source the
  arrondissements cover all of the three cities' postal codes, so the cities themselves are never
  offered; the rule is written generally (a city keeps any postal code no arrondissement covers).
* Communes déléguées and associées (villages merged into a commune nouvelle or associated to
  another commune) are *not* offered as separate choices, because the source gives them no postal
  code of their own — 880 of the 2,576 belong to a commune with several postal codes, so which
  code is theirs would be a guess — and because 584 communes déléguées reuse the INSEE code of the
  commune they belong to, so a choice could no longer be identified by (postal code, INSEE
  code). Their names still help people recognise their place: they are attached to the commune
  they belong to as :attr:`Commune.former` (names equal to that commune's own name left out), e.g.
  Arboys en Bugey → ("Arbignieu", "Saint-Bois"), so the form can show "Arboys en Bugey
  (Arbignieu, Saint-Bois)".
  The commune shown in a profile, and its département and region, are those of the current commune
  — the old village name is also a finer, more identifying location, which an anonymous chat should
  not display by default.
* Order within a postal code: population descending, then name (accent- and case-insensitive),
  then INSEE code — the most likely choice first.
* Regions of the collectivités d'outre-mer: Saint-Pierre-et-Miquelon (975), Saint-Barthélemy (977),
  Saint-Martin (978), the TAAF (984), Wallis-et-Futuna (986), French Polynesia (987), New Caledonia
  (988) and Clipperton (989) belong to no INSEE region. As in the source, their "region" is a
  pseudo-code equal to the collectivité's own code, named after it (region "987" is "Polynésie
  française"). It is never empty, every département has exactly one region, and a pseudo-code
  (three digits) cannot be mistaken for an INSEE region code (two digits: "11", "04", "94", …).
  The five overseas départements and regions (971–974, 976) have real region codes 01–06.

Postal codes are looked up as exactly five ASCII digits after stripping leading and trailing
whitespace; anything else ("7501", "75 011", "abcde", "") finds nothing and never raises. A
postal code does not give the département: 01200 covers communes of the Ain and of Haute-Savoie,
97133 is Saint-Barthélemy (977), and Corsican codes start with 20 (départements 2A and 2B).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import msgspec

__all__ = ["FORMAT", "Commune", "Geo", "GeoData"]

FORMAT = 1  # version of the layout of fr-geo.json this module reads

_PACKAGED = "data/fr-geo.json"


@dataclass(frozen=True, slots=True)
class Commune:
    """One choice for a postal code."""

    code: str  # INSEE code, e.g. "75111", "2A004"
    name: str  # e.g. "Paris 11e Arrondissement"
    dep: str  # département code, e.g. "75", "2A", "974"
    dep_name: str
    region: str  # INSEE region code ("11"), or the collectivité's code overseas ("987")
    region_name: str
    postal_code: str  # the code it was looked up by
    former: tuple[str, ...] = ()  # communes déléguées/associées it includes, by name


class GeoData(msgspec.Struct, frozen=True):
    """The content of ``fr-geo.json`` as written by ``scripts/build_geo.py``."""

    attribution: str
    format: int
    # postal code → [INSEE code, name, département code, region code], in display order
    postal: dict[str, list[tuple[str, str, str, str]]]
    departements: list[tuple[str, str, str]]  # [code, name, region code], by code
    regions: list[tuple[str, str]]  # [code, name], by code
    # INSEE code of a current commune → names of its communes déléguées/associées
    former: dict[str, list[str]] = msgspec.field(default_factory=dict)


def _postal_key(code: str) -> str | None:
    key = code.strip()
    if len(key) == 5 and key.isascii() and key.isdigit():
        return key
    return None


class Geo:
    """Read-only lookups over one :class:`GeoData`. Safe to share between tasks and threads."""

    __slots__ = (
        "_dep_list",
        "_deps",
        "_former",
        "_postal",
        "_region_list",
        "_regions",
        "attribution",
    )

    def __init__(self, data: GeoData) -> None:
        if data.format != FORMAT:
            raise ValueError(f"fr-geo data has format {data.format}, this code reads {FORMAT}")
        self.attribution: str = data.attribution
        self._postal = data.postal
        self._dep_list = list(data.departements)
        self._region_list = list(data.regions)
        self._deps = {code: (name, region) for code, name, region in data.departements}
        self._regions = dict(data.regions)
        self._former = {code: tuple(names) for code, names in data.former.items()}

    @classmethod
    def from_json(cls, raw: bytes | str) -> Geo:
        return cls(msgspec.json.decode(raw, type=GeoData))

    @classmethod
    def load(cls, path: Path | None = None) -> Geo:
        """Read ``path``, or the file packaged with :mod:`causette.geo` when it is None."""
        if path is None:
            raw = resources.files(__name__).joinpath(_PACKAGED).read_bytes()
        else:
            raw = path.read_bytes()
        return cls.from_json(raw)

    def _commune(self, postal_code: str, row: tuple[str, str, str, str]) -> Commune:
        code, name, dep, region = row
        return Commune(
            code=code,
            name=name,
            dep=dep,
            dep_name=self.dep_name(dep),
            region=region,
            region_name=self.region_name(region),
            postal_code=postal_code,
            former=self._former.get(code, ()),
        )

    def postal(self, code: str) -> list[Commune]:
        """The communes a postal code covers, most populous first; [] for unknown or malformed."""
        key = _postal_key(code)
        if key is None:
            return []
        return [self._commune(key, row) for row in self._postal.get(key, ())]

    def commune(self, postal_code: str, insee_code: str) -> Commune | None:
        """The commune ``insee_code`` if ``postal_code`` covers it (the form's answer), or None."""
        key = _postal_key(postal_code)
        if key is None:
            return None
        wanted = insee_code.strip()
        for row in self._postal.get(key, ()):
            if row[0] == wanted:
                return self._commune(key, row)
        return None

    def departements(self) -> list[tuple[str, str, str]]:
        """(code, name, region code) of every département and collectivité, by code."""
        return list(self._dep_list)

    def regions(self) -> list[tuple[str, str]]:
        """(code, name) of every region, overseas collectivités included, by code."""
        return list(self._region_list)

    def dep_name(self, code: str) -> str:
        """The département's name; "" for an unknown code."""
        entry = self._deps.get(code)
        return entry[0] if entry else ""

    def region_name(self, code: str) -> str:
        """The region's name; "" for an unknown code."""
        return self._regions.get(code, "")

    def region_of_dep(self, code: str) -> str:
        """The region code of a département; "" for an unknown code."""
        entry = self._deps.get(code)
        return entry[1] if entry else ""

    def __repr__(self) -> str:
        return f"<Geo {len(self._postal)} postal codes, {len(self._deps)} départements>"
