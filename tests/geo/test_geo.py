"""French geography: the lookups the entry form, profiles and people filters rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import msgspec
import pytest

from causette.geo import FORMAT, Commune, Geo, GeoData

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGED = REPO_ROOT / "src" / "causette" / "geo" / "data" / "fr-geo.json"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_geo.py"


@pytest.fixture(scope="module")
def geo() -> Geo:
    return Geo.load()


def names(communes: list[Commune]) -> list[str]:
    return [c.name for c in communes]


# --- postal codes people type ---------------------------------------------------------------


def test_paris_arrondissement_replaces_the_city(geo: Geo) -> None:
    [commune] = geo.postal("75011")
    assert commune == Commune(
        code="75111",
        name="Paris 11e Arrondissement",
        dep="75",
        dep_name="Paris",
        region="11",
        region_name="Île-de-France",
        postal_code="75011",
    )
    assert geo.commune("75011", "75056") is None  # Paris as a whole is not a choice


def test_paris_16e_has_two_postal_codes(geo: Geo) -> None:
    for code in ("75016", "75116"):
        assert [(c.code, c.name) for c in geo.postal(code)] == [
            ("75116", "Paris 16e Arrondissement")
        ]


def test_lyon_and_marseille_arrondissements(geo: Geo) -> None:
    assert [(c.code, c.name, c.dep, c.region) for c in geo.postal("69001")] == [
        ("69381", "Lyon 1er Arrondissement", "69", "84")
    ]
    assert [(c.code, c.name, c.dep, c.region) for c in geo.postal("13001")] == [
        ("13201", "Marseille 1er Arrondissement", "13", "93")
    ]
    assert geo.commune("69001", "69123") is None
    assert geo.commune("13001", "13055") is None


def test_shared_postal_code_lists_every_commune_most_populous_first(geo: Geo) -> None:
    communes = geo.postal("01400")
    assert names(communes) == [
        "Châtillon-sur-Chalaronne",
        "Neuville-les-Dames",
        "Chanoz-Châtenay",
        "L'Abergement-Clémenciat",
        "Condeissiat",
        "Romans",
        "Sulignat",
        "Sandrans",
        "Dompierre-sur-Chalaronne",
        "Saint-Georges-sur-Renon",
    ]
    assert {(c.dep, c.region, c.postal_code) for c in communes} == {("01", "84", "01400")}
    assert len({c.code for c in communes}) == len(communes)


def test_postal_code_across_departements(geo: Geo) -> None:
    by_name = {c.name: c for c in geo.postal("01200")}
    assert by_name["Valserhône"].dep == "01"
    assert by_name["Éloise"].dep == "74"
    assert by_name["Éloise"].dep_name == "Haute-Savoie"


def test_corsica(geo: Geo) -> None:
    [ajaccio] = geo.postal("20000")
    assert (ajaccio.code, ajaccio.name, ajaccio.dep, ajaccio.dep_name) == (
        "2A004",
        "Ajaccio",
        "2A",
        "Corse-du-Sud",
    )
    assert (ajaccio.region, ajaccio.region_name) == ("94", "Corse")
    bastia = geo.postal("20200")[0]
    assert (bastia.code, bastia.name, bastia.dep, bastia.dep_name, bastia.region) == (
        "2B033",
        "Bastia",
        "2B",
        "Haute-Corse",
        "94",
    )


def test_overseas_departement(geo: Geo) -> None:
    [commune] = geo.postal("97400")
    assert (commune.code, commune.name, commune.dep, commune.dep_name) == (
        "97411",
        "Saint-Denis",
        "974",
        "La Réunion",
    )
    assert (commune.region, commune.region_name) == ("04", "La Réunion")


def test_overseas_collectivites_use_their_own_code_as_region(geo: Geo) -> None:
    [papeete] = geo.postal("98714")
    assert (papeete.name, papeete.dep, papeete.region) == ("Papeete", "987", "987")
    assert papeete.region_name == "Polynésie française"
    [saint_barth] = geo.postal("97133")  # a Guadeloupe-looking postal code
    assert (saint_barth.dep, saint_barth.region) == ("977", "977")
    assert names(geo.postal("97500")) == ["Saint-Pierre", "Miquelon-Langlade"]


def test_communes_deleguees_are_names_of_their_commune_not_choices(geo: Geo) -> None:
    [annecy] = geo.postal("74000")
    assert annecy.name == "Annecy"
    assert annecy.former == ("Annecy-le-Vieux", "Cran-Gevrier", "Meythet", "Pringy", "Seynod")
    assert "Seynod" not in names(geo.postal("74600"))
    arboys = geo.commune("01300", "01015")
    assert arboys is not None
    assert (arboys.name, arboys.former) == ("Arboys en Bugey", ("Arbignieu", "Saint-Bois"))


# --- user input -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["00000", "99999", "98000"])
def test_unknown_postal_codes(geo: Geo, code: str) -> None:
    assert geo.postal(code) == []


@pytest.mark.parametrize(
    "code",
    [
        "",
        " ",
        "7501",
        "750111",
        "75 011",
        "75O11",
        "abcde",
        "75011a",
        "７５０１１",
        "٧٥٠١١",
        "7501\x00",
    ],
)
def test_malformed_postal_codes(geo: Geo, code: str) -> None:
    assert geo.postal(code) == []
    assert geo.commune(code, "75111") is None


def test_surrounding_whitespace_is_ignored(geo: Geo) -> None:
    [commune] = geo.postal(" 75011\n")
    assert commune.postal_code == "75011"
    assert geo.commune("\t75011 ", " 75111 ") == commune


def test_commune_checks_the_postal_code_covers_it(geo: Geo) -> None:
    chatillon = geo.commune("01400", "01093")
    assert chatillon is not None
    assert (chatillon.name, chatillon.postal_code) == ("Châtillon-sur-Chalaronne", "01400")
    assert geo.commune("75011", "75112") is None  # Paris 12e, another postal code
    assert geo.commune("01400", "75111") is None
    assert geo.commune("00000", "01093") is None
    assert geo.commune("01400", "") is None


# --- départements and regions ---------------------------------------------------------------


def test_departements(geo: Geo) -> None:
    deps = geo.departements()
    codes = [code for code, _, _ in deps]
    assert codes == sorted(codes)
    assert len(codes) == len(set(codes)) == 109
    assert ("2A", "Corse-du-Sud", "94") in deps
    assert ("2B", "Haute-Corse", "94") in deps
    assert ("75", "Paris", "11") in deps
    assert ("976", "Mayotte", "06") in deps
    assert "20" not in codes
    deps.clear()  # callers get a copy
    assert len(geo.departements()) == 109


def test_regions(geo: Geo) -> None:
    regions = geo.regions()
    assert ("11", "Île-de-France") in regions
    assert ("94", "Corse") in regions
    assert ("04", "La Réunion") in regions
    assert ("988", "Nouvelle-Calédonie") in regions
    codes = [code for code, _ in regions]
    assert codes == sorted(codes)
    assert {region for _, _, region in geo.departements()} == set(codes)


def test_names_and_region_of_departement(geo: Geo) -> None:
    assert geo.dep_name("2B") == "Haute-Corse"
    assert geo.dep_name("13") == "Bouches-du-Rhône"
    assert geo.dep_name("974") == "La Réunion"
    assert geo.region_name("84") == "Auvergne-Rhône-Alpes"
    assert geo.region_name("93") == "Provence-Alpes-Côte d'Azur"
    assert geo.region_of_dep("2A") == "94"
    assert geo.region_of_dep("974") == "04"
    assert geo.region_of_dep("975") == "975"
    for unknown in ("", "20", "00", "2C", "99"):
        assert geo.dep_name(unknown) == ""
        assert geo.region_of_dep(unknown) == ""
    assert geo.region_name("") == ""
    assert geo.region_name("12") == ""


def test_every_commune_is_consistent_with_its_departement() -> None:
    raw = resources.files("causette.geo").joinpath("data/fr-geo.json").read_bytes()
    data = msgspec.json.decode(raw, type=GeoData)
    geo = Geo(data)
    regions = dict(data.regions)
    assert len(data.postal) > 6000
    for postal_code, rows in data.postal.items():
        assert len(postal_code) == 5
        assert postal_code.isascii()
        assert postal_code.isdigit()
        assert rows
        assert len({row[0] for row in rows}) == len(rows)
        for _, name, dep, region in rows:
            assert name
            assert geo.region_of_dep(dep) == region
            assert region in regions
    for code in data.former:
        assert any(row[0] == code for rows in data.postal.values() for row in rows)


# --- attribution and loading ----------------------------------------------------------------


def test_attribution(geo: Geo) -> None:
    assert "Etalab" in geo.attribution
    assert "Licence Ouverte" in geo.attribution
    assert "decoupage-administratif 6.0.0" in geo.attribution
    assert "MIT" in geo.attribution
    data = resources.files("causette.geo").joinpath("data")
    assert "Licence Ouverte" in data.joinpath("ATTRIBUTION.md").read_text(encoding="utf-8")
    licence = data.joinpath("LICENSE-decoupage-administratif").read_text(encoding="utf-8")
    assert "MIT License" in licence
    assert "Etalab" in licence


def test_load_is_fast_and_accepts_a_path() -> None:
    start = time.perf_counter()
    geo = Geo.load(PACKAGED)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"loading took {elapsed:.3f} s"
    assert names(geo.postal("75011")) == ["Paris 11e Arrondissement"]


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    data = msgspec.json.decode(PACKAGED.read_bytes(), type=GeoData)
    newer = msgspec.structs.replace(data, format=FORMAT + 1)
    path = tmp_path / "fr-geo.json"
    path.write_bytes(msgspec.json.encode(newer))
    with pytest.raises(ValueError, match="format"):
        Geo.load(path)


def test_rebuild_gives_identical_bytes(tmp_path: Path) -> None:
    source = Path(
        os.environ.get("CAUSETTE_FR_GEO_DIR") or REPO_ROOT.parent / "shared" / "data" / "fr-geo"
    )
    if not (source / "communes.json").is_file():
        pytest.skip(
            f"no Etalab source data in {source}: set CAUSETTE_FR_GEO_DIR or place shared/ beside "
            "the repository (shared/data/fr-geo)"
        )
    output = tmp_path / "fr-geo.json"
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), str(source), "--output", str(output)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == PACKAGED.read_bytes(), (
        "src/causette/geo/data/fr-geo.json is not what scripts/build_geo.py builds: rebuild it"
    )
