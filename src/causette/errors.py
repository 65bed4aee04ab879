"""One error hierarchy: each error has a stable code, an HTTP status and a French + English message.

Clients show ``message(lang)``; logs carry ``code`` only (never the parameters, which may hold
personal data such as a pseudonym).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")


@dataclass(frozen=True, slots=True)
class Text:
    """A message parameter written in both languages (``detail=Text("…", "…")``)."""

    fr: str
    en: str


class CausetteError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    fr: ClassVar[str] = "Erreur interne. Réessayez dans un instant."
    en: ClassVar[str] = "Internal error. Please try again in a moment."
    #: True when the same request may succeed later without change (the client may retry).
    retryable: ClassVar[bool] = False

    def __init__(
        self, *, field: str | None = None, details: dict[str, Any] | None = None, **params: Any
    ) -> None:
        super().__init__(self.code)
        self.field = field
        self.params = params
        #: Non-personal data for the client (e.g. a decision code to link to).
        self.details = details or {}

    def message(self, lang: str = "fr") -> str:
        template = self.en if lang == "en" else self.fr
        params = {
            k: (v.en if lang == "en" else v.fr) if isinstance(v, Text) else v
            for k, v in self.params.items()
        }
        try:
            return template.format(**params)
        except (KeyError, IndexError):  # a missing parameter must never hide the error itself
            return template

    def to_dict(self, lang: str = "fr") -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message(lang)}
        if self.field is not None:
            out["field"] = self.field
        if self.retryable:
            out["retryable"] = True
        if self.details:
            out["details"] = self.details
        return out


class InternalError(CausetteError):
    retryable = True


class ConfigError(CausetteError):
    code = "config_invalid"
    fr = "Configuration invalide : {detail}"
    en = "Invalid configuration: {detail}"


# --- Entry ---------------------------------------------------------------------------------------


class EntryError(CausetteError):
    status = 422


class PseudonymLength(EntryError):
    code = "pseudonym_length"
    fr = "Le pseudo doit compter entre {min} et {max} caractères."
    en = "The pseudonym must be {min} to {max} characters long."


class PseudonymChars(EntryError):
    code = "pseudonym_chars"
    fr = (
        "Le pseudo ne peut contenir que des lettres, des chiffres et les signes - _ . ' "
        "(pas d'espace, d'emoji ni de caractère invisible)."
    )
    en = (
        "The pseudonym may only contain letters, digits and the signs - _ . ' "
        "(no space, emoji or invisible character)."
    )


class PseudonymTaken(EntryError):
    code = "pseudonym_taken"
    status = 409
    fr = "Ce pseudo (ou un pseudo qui lui ressemble trop) est déjà utilisé. Choisissez-en un autre."
    en = "This pseudonym (or one too similar to it) is already in use. Please choose another."


class PseudonymReserved(EntryError):
    code = "pseudonym_reserved"
    fr = "Ce pseudo est réservé. Choisissez-en un autre."
    en = "This pseudonym is reserved. Please choose another."


class GenderInvalid(EntryError):
    code = "gender_invalid"
    fr = "Choisissez femme, homme ou autre."
    en = "Choose woman, man or other."


class AgeInvalid(EntryError):
    code = "age_invalid"
    fr = "Indiquez votre âge en années (un nombre entre {min} et {max})."
    en = "Enter your age in years (a number between {min} and {max})."


class AgeTooYoung(EntryError):
    code = "age_too_young"
    status = 403
    fr = "Causette est réservé aux personnes de {min} ans et plus."
    en = "Causette is for people aged {min} and over."


class PostalCodeInvalid(EntryError):
    code = "postal_code_invalid"
    fr = "Code postal inconnu. Indiquez un code postal français à 5 chiffres."
    en = "Unknown postal code. Enter a 5-digit French postal code."


class CommuneInvalid(EntryError):
    code = "commune_invalid"
    fr = "Choisissez votre commune dans la liste."
    en = "Choose your town from the list."


class RulesNotAccepted(EntryError):
    code = "rules_not_accepted"
    fr = "Pour entrer, vous devez accepter les règles de Causette."
    en = "To enter, you must accept Causette's rules."


class BadRequest(CausetteError):
    code = "bad_request"
    status = 400
    fr = "Requête invalide : {detail}"
    en = "Invalid request: {detail}"


class BodyTooLarge(CausetteError):
    code = "body_too_large"
    status = 413
    fr = "Requête trop volumineuse."
    en = "Request too large."


class NotFound(CausetteError):
    code = "not_found"
    status = 404
    fr = "Page introuvable."
    en = "Page not found."


class TooManySessions(CausetteError):
    code = "too_many_sessions"
    status = 429
    retryable = True
    fr = "Trop de nouvelles sessions depuis votre connexion. Réessayez dans quelques minutes."
    en = "Too many new sessions from your connection. Please try again in a few minutes."


# --- Sessions and connections ---------------------------------------------------------------


class NotAuthenticated(CausetteError):
    code = "not_authenticated"
    status = 401
    fr = "Votre session est terminée. Entrez à nouveau pour continuer."
    en = "Your session has ended. Please enter again to continue."


class OriginForbidden(CausetteError):
    code = "origin_forbidden"
    status = 403
    fr = "Connexion refusée : origine non autorisée."
    en = "Connection refused: origin not allowed."


class ShuttingDown(CausetteError):
    code = "shutting_down"
    status = 503
    retryable = True
    fr = "Le serveur redémarre. Reconnexion automatique…"
    en = "The server is restarting. Reconnecting automatically…"


class SessionReplaced(CausetteError):
    code = "session_replaced"
    status = 409
    fr = "Causette est ouvert dans un autre onglet ou sur un autre appareil."
    en = "Causette is open in another tab or on another device."


class SessionQuit(CausetteError):
    code = "quit"
    status = 401
    fr = "Vous avez quitté Causette. À bientôt !"
    en = "You have left Causette. See you soon!"


class TooSlow(CausetteError):
    code = "too_slow"
    status = 503
    retryable = True
    fr = "Connexion trop lente : reconnexion…"
    en = "Connection too slow: reconnecting…"


# --- WebSocket protocol ---------------------------------------------------------------------


class ProtocolError(CausetteError):
    status = 400


class BadJson(ProtocolError):
    code = "bad_json"
    fr = "Trame illisible : ce n'est pas du JSON valide."
    en = "Unreadable frame: not valid JSON."


class BadUtf8(ProtocolError):
    code = "bad_utf8"
    fr = "Trame illisible : texte UTF-8 invalide."
    en = "Unreadable frame: invalid UTF-8 text."


class UnknownType(ProtocolError):
    code = "unknown_type"
    fr = "Commande inconnue : {type}."
    en = "Unknown command: {type}."


class BadField(ProtocolError):
    code = "bad_field"
    fr = "Commande invalide : {detail}."
    en = "Invalid command: {detail}."


class FrameTooLarge(ProtocolError):
    code = "frame_too_large"
    status = 413
    fr = "Trame trop grande (au plus {max} octets)."
    en = "Frame too large (at most {max} bytes)."


class BinaryNotSupported(ProtocolError):
    code = "binary_not_supported"
    fr = "Les trames binaires ne sont pas acceptées : envoyez du texte JSON."
    en = "Binary frames are not accepted: send JSON text."


class HelloRequired(ProtocolError):
    code = "hello_required"
    fr = "La première commande doit être « hello »."
    en = "The first command must be “hello”."


class AlreadyHello(ProtocolError):
    code = "already_hello"
    fr = "« hello » a déjà été reçu sur cette connexion."
    en = "“hello” was already received on this connection."


class SlowDown(ProtocolError):
    code = "slow_down"
    status = 429
    retryable = True
    fr = "Trop de commandes à la fois : ralentissez un peu."
    en = "Too many commands at once: please slow down."


# --- Chat -----------------------------------------------------------------------------------


class MessageEmpty(ProtocolError):
    code = "message_empty"
    fr = "Le message est vide."
    en = "The message is empty."


class MessageTooLong(ProtocolError):
    code = "message_too_long"
    status = 413
    fr = "Message trop long : {length} caractères pour {max} au plus."
    en = "Message too long: {length} characters, at most {max}."


class MessageForbiddenChars(ProtocolError):
    code = "message_forbidden_chars"
    fr = "Le message contient des caractères de contrôle ou d'inversion de texte non autorisés."
    en = "The message contains control or text-direction characters that are not allowed."


class RoomUnknown(ProtocolError):
    code = "room_unknown"
    status = 404
    fr = "Ce salon n'existe pas."
    en = "This room does not exist."


class RoomNotJoined(ProtocolError):
    code = "room_not_joined"
    status = 403
    fr = "Rejoignez ce salon avant d'y écrire."
    en = "Join this room before writing in it."


class RoomAgeRestricted(ProtocolError):
    code = "room_age_restricted"
    status = 403
    fr = "Ce salon est réservé aux personnes de {min} ans et plus."
    en = "This room is for people aged {min} and over."


class TooManyRooms(ProtocolError):
    code = "too_many_rooms"
    status = 403
    fr = "Vous êtes déjà dans {max} salons : quittez-en un pour en rejoindre un autre."
    en = "You are already in {max} rooms: leave one to join another."


class StreamUnknown(ProtocolError):
    code = "stream_unknown"
    status = 404
    fr = "Conversation inconnue ou à laquelle vous ne participez pas."
    en = "Unknown conversation, or one you are not part of."


class PersonUnknown(ProtocolError):
    code = "person_unknown"
    status = 404
    fr = "Cette personne n'est plus connectée."
    en = "This person is no longer connected."


class PrivateMessageRefused(ProtocolError):
    code = "pm_refused"
    status = 403
    fr = "Cette personne ne reçoit pas de messages privés de votre part."
    en = "This person does not accept private messages from you."


class PrivateMessageSelf(ProtocolError):
    code = "pm_self"
    fr = "Vous ne pouvez pas vous écrire à vous-même."
    en = "You cannot write to yourself."


class BlockSelf(ProtocolError):
    code = "block_self"
    fr = "Vous ne pouvez pas vous bloquer vous-même."
    en = "You cannot block yourself."


class TooManyBlocks(ProtocolError):
    code = "too_many_blocks"
    fr = "Vous avez atteint la limite de {max} personnes bloquées."
    en = "You have reached the limit of {max} blocked people."


class ModeratorExists(CausetteError):
    code = "moderator_exists"
    status = 409
    fr = "Ce nom de connexion est déjà pris par un autre compte de modération."
    en = "This login is already taken by another moderation account."


class StoreUnavailable(CausetteError):
    code = "store_unavailable"
    status = 503
    retryable = True
    fr = "Service momentanément indisponible : votre message n'a pas été enregistré. Réessayez."
    en = "Service temporarily unavailable: your message was not saved. Please try again."


# --- Storage (opening and migrating) ----------------------------------------------------


class SchemaBehind(ConfigError):
    """The database schema is older than this version of Causette (or empty)."""

    code = "schema_behind"
    fr = (
        "Le schéma de la base de données n'est pas à jour (version {current}, attendue "
        "{head}). Lancez « causette migrate » puis redémarrez."
    )
    en = (
        "The database schema is not up to date (revision {current}, expected {head}). "
        "Run “causette migrate”, then restart."
    )


class SchemaUnknown(ConfigError):
    """The database is at a revision this version of Causette does not know (it is newer)."""

    code = "schema_unknown"
    fr = (
        "La base de données est à une version de schéma inconnue ({current}) : elle a sans "
        "doute été migrée par une version plus récente de Causette. Mettez Causette à jour."
    )
    en = (
        "The database is at an unknown schema revision ({current}): it was probably migrated "
        "by a newer version of Causette. Upgrade Causette."
    )


class StoreUnreachable(StoreUnavailable):
    """The database cannot be reached or opened (at start, or by ``causette migrate``)."""

    code = "store_unreachable"
    fr = "Base de données injoignable ({target}) : {reason}. Vérifiez-la, puis réessayez."
    en = "Cannot reach the database ({target}): {reason}. Check it, then try again."


# --- Safety: automatic protections and sanctions ------------------------------------------


class RateLimited(CausetteError):
    code = "rate_limited"
    status = 429
    retryable = True
    fr = "Doucement : {what}. Réessayez dans {seconds} s."
    en = "Slow down: {what}. Try again in {seconds} s."


class DuplicateMessage(CausetteError):
    code = "duplicate_message"
    status = 429
    fr = "Vous avez déjà envoyé ce message plusieurs fois : il n'est pas renvoyé."
    en = "You have already sent this message several times: it is not sent again."


class NewSessionPrivateMessage(CausetteError):
    code = "new_session_pm"
    status = 403
    retryable = True
    fr = (
        "Pendant vos {minutes} premières minutes, vous ne pouvez écrire en privé qu'aux "
        "personnes avec qui vous avez parlé dans un salon (ou qui vous ont écrit)."
    )
    en = (
        "During your first {minutes} minutes, you can only write privately to people you have "
        "talked with in a room (or who wrote to you)."
    )


class MessageBlocked(CausetteError):
    code = "message_blocked"
    status = 422
    fr = (
        "Message non envoyé : il contient une expression interdite par les règles de Causette "
        "({category}). Décision automatique. Si c'est une erreur, reformulez votre message, ou "
        "signalez-le à la modération."
    )
    en = (
        "Message not sent: it contains an expression Causette's rules forbid ({category}). "
        "Automated decision. If this is a mistake, rephrase your message, or report it to the "
        "moderators."
    )


class Muted(CausetteError):
    code = "muted"
    status = 403
    fr = "Vous ne pouvez pas écrire pour l'instant (décision {decision}, jusqu'à {until})."
    en = "You cannot write for now (decision {decision}, until {until})."


class Banned(CausetteError):
    code = "banned"
    status = 403
    fr = (
        "Vous êtes exclu·e de Causette {until} (décision {decision}). Vous pouvez lire la "
        "décision et la contester."
    )
    en = (
        "You are excluded from Causette {until} (decision {decision}). You can read the "
        "decision and appeal it."
    )


class Kicked(CausetteError):
    code = "kicked"
    status = 403
    fr = "La modération vous a fait sortir de Causette. Lisez la décision qui vous a été adressée."
    en = "The moderators have removed you from Causette. Read the decision sent to you."


class Excluded(CausetteError):
    """The ``bye`` of a connection whose session was just banned (entry refusals: Banned)."""

    code = "excluded"
    status = 403
    fr = "Vous êtes exclu·e de Causette. Lisez la décision qui vous a été adressée."
    en = "You are excluded from Causette. Read the decision sent to you."


class RoomFrozen(CausetteError):
    code = "room_frozen"
    status = 403
    fr = "Ce salon est en lecture seule pour le moment."
    en = "This room is read-only for now."


class RoomClosed(CausetteError):
    code = "room_closed"
    status = 403
    fr = "Ce salon est fermé."
    en = "This room is closed."


class TooManyConnections(CausetteError):
    code = "too_many_connections"
    status = 429
    retryable = True
    fr = "Trop de connexions depuis votre réseau. Fermez d'autres onglets ou réessayez plus tard."
    en = "Too many connections from your network. Close other tabs or try again later."


# --- Reports, cases, appeals ---------------------------------------------------------------


class ReportInvalid(CausetteError):
    code = "report_invalid"
    status = 422
    fr = "Signalement incomplet : {detail}."
    en = "Incomplete report: {detail}."


class ReportTargetGone(CausetteError):
    code = "report_target_gone"
    status = 404
    fr = "Ce que vous signalez n'existe plus ou ne vous est pas visible."
    en = "What you report no longer exists or is not visible to you."


class CaseUnknown(CausetteError):
    code = "case_unknown"
    status = 404
    fr = "Aucun dossier ni aucune décision ne porte ce code."
    en = "No case and no decision has this code."


class CaseClosed(CausetteError):
    code = "case_closed"
    status = 409
    fr = "Ce dossier est déjà traité."
    en = "This case has already been handled."


class DecisionInvalid(CausetteError):
    code = "decision_invalid"
    status = 422
    fr = "Décision incomplète : {detail}."
    en = "Incomplete decision: {detail}."


class AppealNotPossible(CausetteError):
    code = "appeal_not_possible"
    status = 409
    fr = "Cette décision ne peut plus être contestée : {detail}."
    en = "This decision can no longer be appealed: {detail}."


class AppealInvalid(CausetteError):
    code = "appeal_invalid"
    status = 422
    fr = "Recours incomplet : {detail}."
    en = "Incomplete appeal: {detail}."


class SameModerator(CausetteError):
    code = "same_moderator"
    status = 403
    fr = "Un recours doit être examiné par un autre membre de l'équipe que l'auteur de la décision."
    en = "An appeal must be reviewed by another team member than the one who decided."


# --- Moderator accounts --------------------------------------------------------------------


class LoginFailed(CausetteError):
    code = "login_failed"
    status = 401
    fr = "Identifiant, mot de passe ou code à usage unique incorrect."
    en = "Wrong login, password or one-time code."


class AccountLocked(CausetteError):
    code = "account_locked"
    status = 423
    retryable = True
    fr = "Trop d'essais : ce compte est bloqué pendant {minutes} minutes."
    en = "Too many attempts: this account is locked for {minutes} minutes."


class ModeratorRequired(CausetteError):
    code = "moderator_required"
    status = 401
    fr = "Connectez-vous à la console de modération."
    en = "Log in to the moderation console."


class AdminRequired(CausetteError):
    code = "admin_required"
    status = 403
    fr = "Réservé aux administrateurs."
    en = "Administrators only."


class PasswordTooWeak(CausetteError):
    code = "password_too_weak"
    status = 422
    fr = "Mot de passe trop faible : au moins {min} caractères, pas seulement des chiffres."
    en = "Password too weak: at least {min} characters, not only digits."


# --- Bus (several nodes) ------------------------------------------------------------------


class BusUnreachable(CausetteError):
    """The bus (Redis) cannot be reached at start."""

    code = "bus_unreachable"
    status = 503
    retryable = True
    fr = "Bus de messages (Redis) injoignable ({target}) : {reason}. Vérifiez-le, puis réessayez."
    en = "Cannot reach the message bus (Redis) ({target}): {reason}. Check it, then try again."


def all_error_classes() -> list[type[CausetteError]]:
    """Every error class with a code of its own (grouping classes such as ``EntryError``
    inherit their parent's code and are left out). Codes are unique (a test checks)."""
    found: list[type[CausetteError]] = [CausetteError]
    stack: list[type[CausetteError]] = [CausetteError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.code != cls.code:
                found.append(sub)
    return found


def by_code(code: str) -> type[CausetteError]:
    for cls in all_error_classes():
        if cls.code == code:
            return cls
    return CausetteError
