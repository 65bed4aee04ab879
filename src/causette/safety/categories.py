"""Report categories, their urgency, and the grounds a decision can rely on.

Severity orders the moderation queue: 1 is handled first (child safety, threats to life).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    severity: int
    fr: str
    en: str
    #: The rule or law a decision in this category relies on (DSA art. 17(3)(d)).
    ground_fr: str
    ground_en: str

    def label(self, lang: str) -> str:
        return self.en if lang == "en" else self.fr

    def ground(self, lang: str) -> str:
        return self.ground_en if lang == "en" else self.ground_fr


_ALL = [
    Category(
        "child_safety",
        1,
        "Abus sexuel sur mineur ou pédopiégeage",
        "Child sexual abuse or grooming",
        "Règles de Causette (mineurs) ; code pénal, art. 227-22-1 (propositions sexuelles à un "
        "mineur) et 227-23 (images pédopornographiques)",
        "Causette's rules (minors); French criminal code, art. 227-22-1 (sexual proposals to a "
        "minor) and 227-23 (child sexual abuse material)",
    ),
    Category(
        "threat",
        1,
        "Menace pour la vie ou la sécurité",
        "Threat to life or safety",
        "Règles de Causette (respect) ; code pénal, art. 222-17 et suivants (menaces)",
        "Causette's rules (respect); French criminal code, art. 222-17 ff. (threats)",
    ),
    Category(
        "ambush",
        2,
        "Guet-apens",
        "Ambush (guet-apens)",
        "Règles de Causette (sécurité) ; code pénal, art. 132-71-1 (guet-apens)",
        "Causette's rules (safety); French criminal code, art. 132-71-1 (ambush)",
    ),
    Category(
        "trafficking",
        2,
        "Prostitution ou traite",
        "Prostitution or trafficking",
        "Règles de Causette (illégal) ; code pénal, art. 225-4-1 (traite) et 225-5 (proxénétisme)",
        "Causette's rules (illegal); French criminal code, art. 225-4-1 (trafficking) and 225-5 "
        "(procuring)",
    ),
    Category(
        "harassment",
        3,
        "Harcèlement",
        "Harassment",
        "Règles de Causette (respect) ; code pénal, art. 222-33-2-2 (harcèlement)",
        "Causette's rules (respect); French criminal code, art. 222-33-2-2 (harassment)",
    ),
    Category(
        "hate",
        3,
        "Haine ou discrimination",
        "Hate or discrimination",
        "Règles de Causette (respect) ; loi du 29 juillet 1881, art. 24 et 33 (provocation à la "
        "haine, injure discriminatoire)",
        "Causette's rules (respect); French press law of 29 July 1881, art. 24 and 33 "
        "(incitement to hatred, discriminatory insult)",
    ),
    Category(
        "sexual_nonconsent",
        3,
        "Contenu sexuel non consenti",
        "Sexual content without consent",
        "Règles de Causette (respect) ; code pénal, art. 222-32 (exhibition sexuelle) et 226-2-1",
        "Causette's rules (respect); French criminal code, art. 222-32 (sexual exposure) and "
        "226-2-1",
    ),
    Category(
        "drugs",
        4,
        "Drogues",
        "Drugs",
        "Règles de Causette (illégal) ; code pénal, art. 222-37 (trafic de stupéfiants)",
        "Causette's rules (illegal); French criminal code, art. 222-37 (drug trafficking)",
    ),
    Category(
        "spam_scam",
        5,
        "Spam ou arnaque",
        "Spam or scam",
        "Règles de Causette (illégal) ; code pénal, art. 313-1 (escroquerie)",
        "Causette's rules (illegal); French criminal code, art. 313-1 (fraud)",
    ),
    Category(
        "other",
        6,
        "Autre",
        "Other",
        "Règles de Causette",
        "Causette's rules",
    ),
]

CATEGORIES: dict[str, Category] = {c.code: c for c in _ALL}
