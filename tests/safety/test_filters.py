"""Word and pattern lists: what they catch, what they leave alone, and that no pattern can make
matching slow."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest
import re2

from causette.errors import ConfigError
from causette.safety import filters
from causette.safety.filters import FilterAction, TextFilter, normalize, word_form


@pytest.fixture(scope="module")
def builtin() -> TextFilter:
    return TextFilter.load([])


@pytest.mark.parametrize(
    ("text", "action", "category"),
    [
        ("sale arabe", FilterAction.BLOCK, "hate"),
        ("SALE   ARABE !!", FilterAction.BLOCK, "hate"),
        ("s@le ar@be", FilterAction.BLOCK, "hate"),
        ("ｓａｌｅ ａｒａｂｅ", FilterAction.BLOCK, "hate"),  # full-width look-alikes
        ("bougnoooule", FilterAction.BLOCK, "hate"),  # repeated letters
        ("n1gg3r", FilterAction.BLOCK, "hate"),  # leet
        ("pthc", FilterAction.BLOCK, "child_safety"),
        ("envoie un coupon PCS", FilterAction.HOLD, "spam_scam"),
        ("paye par Western-Union", FilterAction.HOLD, "spam_scam"),
        ("gagnez 500 euros par jour", FilterAction.HOLD, "spam_scam"),
        ("vends beuh pas cher", FilterAction.FLAG, "drugs"),
        ("tu es seule chez toi ?", FilterAction.FLAG, "child_safety"),
        ("150 euros la passe", FilterAction.FLAG, "trafficking"),
    ],
)
def test_the_starter_lists_catch(
    builtin: TextFilter, text: str, action: FilterAction, category: str
) -> None:
    result = builtin.check(text)
    assert result.action == action
    assert category in result.categories


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour à tous, ça va ?",
        "je reviens du Niger",  # not "nigger": runs of two letters are kept
        "le négociant est arabe et fier de l'être",
        "un coca et une coke zero",
        "Achetez ici !",
        "rdv au café à 18 h",
        "j'ai 150 euros de courses",
    ],
)
def test_ordinary_talk_passes(builtin: TextFilter, text: str) -> None:
    assert builtin.check(text).action is None


def test_normalisation_keeps_digits_for_patterns_and_folds_them_for_words() -> None:
    assert normalize("Gagnez 500 € !") == "gagnez 500"
    assert word_form("Gagnez 500 € !") == "gagnez soo"
    assert word_form("Ça   VA ?") == "ca va"


def test_an_operator_list_adds_rules_and_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# mes règles\nhold spam_scam word:promo exclusive\n")
    extra = TextFilter.load([path], builtin=False)
    assert len(extra) == 1
    assert extra.check("Une PROMO exclusive !").action == FilterAction.HOLD
    for line, expected in [
        ("ban hate word:x", "unknown action"),
        ("block nope word:x", "unknown category"),
        ("block hate x", "word:… or regex:…"),
        ("block hate", "expected"),
        ("block hate regex:(?<=a)b", "invalid RE2"),  # lookbehind: not linear-time
        ("block hate word:!!!", "no letter"),
    ]:
        path.write_text(f"# ok\n{line}\n")
        with pytest.raises(ConfigError) as info:
            TextFilter.load([path], builtin=False)
        message = info.value.message("en")
        assert f"{path}:2" in message
        assert expected in message
    with pytest.raises(ConfigError, match="config_invalid"):
        TextFilter.load([tmp_path / "missing.txt"], builtin=False)


def test_no_pattern_can_make_matching_slow(tmp_path: Path) -> None:
    # Nested quantifiers: exponential with a backtracking engine on a near-miss, linear with
    # RE2. 20,000 words must take milliseconds, not centuries.
    path = tmp_path / "evil.txt"
    path.write_text("flag other regex:^([a-z]+ ?)*$\n")
    evil = TextFilter.load([path], builtin=False)
    text = "ab " * 20_000 + "1"
    started = time.perf_counter()
    assert evil.check(text).action is None
    assert time.perf_counter() - started < 1.0


def test_the_ascii_shortcut_cleans_like_the_expressions() -> None:
    # ASCII text skips the Unicode-aware substitution; the result must be the same.
    def reference(folded: str) -> str:
        spaced = re.sub(r"[\W_]+", " ", folded)
        return " ".join(re.sub(r"([^\W\d_])\1{2,}", r"\1", spaced).split())

    rng = random.Random(5)
    alphabet = "aaabbl01__--  ..!?@$|'\"\t\nxyz"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert filters._clean(text) == reference(text), text


def test_ascii_text_gets_the_forms_of_the_general_path() -> None:
    # normalize and word_form take a byte table for ASCII text; every ASCII character, alone
    # and in runs, and random texts of the characters that matter give what the general path
    # (Unicode folding, the leet tables, _clean) gives.
    texts = [chr(c) * n for c in range(128) for n in (1, 2, 3, 4)]
    rng = random.Random(6)
    alphabet = "aAbBlLiI013457xXoO  @$!|.,;'-_\t?LLLlll111"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    texts += ["S@LE R@CE", "n1gg3r", "COOOONNARD !", "ici !", "a|b$c!d@e", "Llll1ii"]
    for text in texts:
        assert normalize(text) == filters._normalize_any(text), text
        assert word_form(text) == filters._word_form_any(text), text


# --- the gate before RE2 (decision 11) -------------------------------------------------------


def _random_pattern(rng: random.Random, depth: int = 3) -> str:
    """A small RE2 expression over the letters a, b and the digit 1."""
    pieces = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(10 if depth > 0 else 6)
        if kind <= 1:
            pieces.append("".join(rng.choice("ab ") for _ in range(rng.randint(1, 3))))
        elif kind == 2:
            pieces.append(rng.choice([r"\b", r"\d", ".", r"\s", "[ab]", "[^a]", "[a-b]", "^"]))
        elif kind == 3:
            pieces.append(rng.choice(["a", "b", "1", " "]) + rng.choice(["?", "*", "+", "{2}"]))
        elif kind <= 5:
            pieces.append(rng.choice(["ab", "ba", "a b", "11"]))
        else:
            inner = [_random_pattern(rng, depth - 1) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.2:
                inner.append("")
            group = "(?:" + "|".join(inner) + ")"
            pieces.append(group + rng.choice(["", "", "?", "*", "+", "{1,2}", "{0,1}"]))
    return "".join(pieces)


def test_every_match_of_an_expression_holds_one_of_its_required_strings() -> None:
    # The gate's promise: a text with none of an expression's required strings cannot match
    # it, so skipping RE2 for that text changes nothing. Checked against RE2 itself.
    rng = random.Random(11)
    gated = 0
    for _ in range(1500):
        pattern = _random_pattern(rng)
        needs = filters.required_literals(pattern)
        compiled = re2.compile(pattern)
        if needs is None:
            continue
        gated += 1
        samples = [
            "".join(rng.choice("ab 1x") for _ in range(rng.randint(0, 10))) for _ in range(40)
        ]
        samples += [rng.choice(sorted(needs)) + "x", "x" + rng.choice(sorted(needs))]
        for text in samples:
            if compiled.search(text):
                assert any(s in text for s in needs), (pattern, needs, text)
    assert gated > 1000  # most random expressions get a gate


def test_the_gate_gives_the_same_answers_as_re2_alone() -> None:
    rng = random.Random(12)
    for _ in range(300):
        pattern = _random_pattern(rng)
        rules = [filters.Rule(FilterAction.FLAG, "other", "regex", pattern, "test:1")]
        gated = TextFilter(rules)
        compiled = re2.compile(pattern)
        for _ in range(30):
            text = "".join(rng.choice("ab 1xAB!") for _ in range(rng.randint(0, 12)))
            expected = compiled.search(normalize(text)) is not None
            assert (gated.check(text).action is not None) == expected, (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "needs"),
    [
        (r"\bescort (?:dispo|disponible)\b", {"escort dispo", "escort disponible"}),
        (r"\bt as quel age\b.*\b(?:seule?|parents)\b", {"t as quel age"}),
        (r"xa+b", {"x"}),  # a repeat is not joined to its neighbours: "x" or "a", not "xab"
        (r"[ab]c?d", {"ad", "bd", "acd", "bcd"}),
        (r"(?:x|)y", {"xy", "y"}),
        (r"\d+", None),  # no particular string
        (r"(?i)sale race", None),  # case folded: the text could hold "SALE RACE"
        (r"(?i:sale) race", {" race"}),
        (r"[[:alpha:]]+x", None),  # read otherwise by Python's parser: RE2 always asked
        (r"\pL+ x", None),
        (r"a|", None),
    ],
)
def test_required_strings(pattern: str, needs: set[str] | None) -> None:
    found = filters.required_literals(pattern)
    assert (set(found) if found is not None else None) == needs


def test_re2_is_asked_only_about_texts_holding_a_required_string(
    builtin: TextFilter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RE2 releases the GIL, which let the store's thread hold up the event loop: ordinary
    # talk must not reach it.
    asked: list[str] = []
    real = builtin._regex_set

    class Spy:
        def Match(self, text: str) -> object:
            asked.append(text)
            return real.Match(text)

    monkeypatch.setattr(builtin, "_regex_set", Spy())
    assert builtin.check("salut tout le monde, quelqu'un de Lyon ?").action is None
    assert builtin.check("B12.123456789Z xxxxxxxxxxxxxxxx").action is None
    assert asked == []
    assert builtin.check("escort dispo ce soir").action == FilterAction.FLAG
    assert asked == ["escort dispo ce soir"]


def test_one_expression_without_required_strings_sends_every_text_to_re2(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("flag drugs regex:\\bvends? beuh\\b\nflag other regex:\\d{6,}\n")
    lists = TextFilter.load([path], builtin=False)
    assert lists.check("appelle le 0612345678").action == FilterAction.FLAG
    assert lists.check("je vends beuh").action == FilterAction.FLAG
    assert lists.check("bonjour").action is None
