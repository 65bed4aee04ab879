"""The schema, in SQLAlchemy Core. One schema for SQLite and PostgreSQL.

Times are integers: milliseconds since the Unix epoch (``BigInteger``). Every change here needs a
migration in ``causette/store/migrations/versions`` (``tests/store/test_migrations.py`` fails
while they disagree).

Constraints and indexes carry explicit names (the naming convention below) so that later
migrations can drop or alter them on both databases.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    literal_column,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- sessions: a person exists only while their session lives ---------------------------------

sessions = Table(
    "sessions",
    metadata,
    Column("id", String, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("pseudonym_key", String, nullable=False),
    # The public profile.
    Column("name", String, nullable=False),
    Column("gender", String(1), nullable=False),
    Column("age", Integer, nullable=False),
    Column("commune", String, nullable=False),
    Column("dep", String, nullable=False),
    Column("region", String, nullable=False),
    # Private.
    Column("postal_code", String, nullable=False),
    Column("commune_code", String, nullable=False),
    Column("lang", String, nullable=False),
    Column("pm_policy", String, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    # Keyed hash of the network the session came from (never the IP); "" when unknown.
    Column("ip_key", String, nullable=False, server_default=""),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("token_hash"),
    # sessions_with_key(): other sessions from the same network.
    Index(None, "ip_key"),
)

#: The database, not the application, guarantees that two live sessions never share a pseudonym
#: (two nodes racing to admit the same name: one insert fails). Ended sessions keep theirs.
LIVE_PSEUDONYM_WHERE = sessions.c.ended_at.is_(None)
Index(
    "uq_sessions_live_pseudonym_key",
    sessions.c.pseudonym_key,
    unique=True,
    sqlite_where=LIVE_PSEUDONYM_WHERE,
    postgresql_where=LIVE_PSEUDONYM_WHERE,
)
# idle_sessions(): live sessions by last_seen.
Index(
    "ix_sessions_live_last_seen",
    sessions.c.last_seen,
    sqlite_where=sessions.c.ended_at.is_(None),
    postgresql_where=sessions.c.ended_at.is_(None),
)
# purge_ended_sessions(): ended sessions by end time.
Index(
    "ix_sessions_ended_at",
    sessions.c.ended_at,
    sqlite_where=sessions.c.ended_at.is_not(None),
    postgresql_where=sessions.c.ended_at.is_not(None),
)

# --- streams and their items -------------------------------------------------------------------

streams = Table(
    "streams",
    metadata,
    Column("id", String, nullable=False),  # "r:<slug>" or "d:<a>:<b>"
    Column("epoch", String, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("id"),
)

messages = Table(
    "messages",
    metadata,
    Column("stream", String, ForeignKey("streams.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("id", String, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("author", String, nullable=False),
    Column("name", String, nullable=False),
    Column("text", Text, nullable=False),
    # Client-chosen idempotency key; NULL for items without one (NULLs never collide).
    Column("local_id", String, nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("stream", "seq"),
    UniqueConstraint("id"),
    UniqueConstraint("author", "local_id"),
    Index(None, "expires_at"),
)

# --- rooms ---------------------------------------------------------------------------------------

memberships = Table(
    "memberships",
    metadata,
    Column("room", String, nullable=False),  # room slug
    Column("person_id", String, nullable=False),
    Column("joined_at", BigInteger, nullable=False),
    # 1 + the person's highest join_order when joining: rooms_of() keeps the joining order even
    # for joins within the same millisecond.
    Column("join_order", BigInteger, nullable=False),
    PrimaryKeyConstraint("room", "person_id"),
    Index(None, "person_id", "join_order"),
)

# --- private conversations -----------------------------------------------------------------------

conversations = Table(
    "conversations",
    metadata,
    Column("person_id", String, nullable=False),  # whose view of the conversation this is
    Column("stream", String, ForeignKey("streams.id"), nullable=False),
    Column("other", String, nullable=False),
    Column("opened_by", String, nullable=False),
    Column("read_seq", BigInteger, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("person_id", "stream"),
)

# --- blocks --------------------------------------------------------------------------------------

blocks = Table(
    "blocks",
    metadata,
    Column("blocker", String, nullable=False),
    Column("blocked", String, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("blocker", "blocked"),
    Index(None, "blocked"),
)


# --- moderation ----------------------------------------------------------------------------------
#
# Person ids, message ids and room slugs are plain strings here, without foreign keys to
# ``sessions`` or ``messages``: cases, reports, evidence and decisions outlive the sessions and
# messages they are about (both are purged), as the law and appeals require. Foreign keys only
# tie moderation rows to each other; none is ever deleted.

cases = Table(
    "cases",
    metadata,
    Column("id", String, nullable=False),  # the case code, e.g. "C-7KQH2XPM"
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),  # "open", "closed"
    Column("category", String, nullable=False),
    Column("severity", Integer, nullable=False),  # 1 = most urgent
    Column("target_kind", String(8), nullable=False),
    Column("target_key", String, nullable=False),  # "message:<id>", "person:<id>", "room:<slug>"
    Column("subject", String, nullable=True),  # person id
    Column("subject_name", String, nullable=False),
    Column("room", String, nullable=True),
    Column("stream", String, nullable=True),
    Column("message_id", String, nullable=True),
    Column("reporters", Integer, nullable=False),
    Column("automated", Boolean, nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("decided_by", String, nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    PrimaryKeyConstraint("id"),
    # open_cases(): the queue, most severe then oldest first.
    Index(None, "status", "severity", "created_at"),
    # cases_of_subject(), reporter_networks_against().
    Index(None, "subject", "created_at"),
)

#: At most one open case per target, enforced by the database: two reports of one message racing
#: on two nodes cannot open two cases (``file_report`` inserts with ``ON CONFLICT DO NOTHING``
#: on this index and joins the winner's case).
#: (A literal, not a bound parameter: PostgreSQL infers the partial index for ``ON CONFLICT`` only
#: from a predicate it can prove.)
OPEN_CASE_WHERE = cases.c.status == literal_column("'open'")
Index(
    "uq_cases_open_target_key",
    cases.c.target_key,
    unique=True,
    sqlite_where=OPEN_CASE_WHERE,
    postgresql_where=OPEN_CASE_WHERE,
)

reports = Table(
    "reports",
    metadata,
    Column("id", String, nullable=False),
    Column("case_id", String, ForeignKey("cases.id"), nullable=False),
    Column("reporter", String, nullable=False),  # person id
    Column("reporter_key", String, nullable=False),  # keyed IP hash of the reporter
    Column("category", String, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("good_faith", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("id"),
    # One report per reporter and case (also serves reports_of() and the join with cases).
    UniqueConstraint("case_id", "reporter"),
    # Abuse of reporting: reports from one network over time.
    Index(None, "reporter_key", "created_at"),
)

evidence = Table(
    "evidence",
    metadata,
    Column("case_id", String, ForeignKey("cases.id"), nullable=False),
    Column("n", Integer, nullable=False),
    Column("kind", String, nullable=False),
    Column("captured_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON
    PrimaryKeyConstraint("case_id", "n"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String, nullable=False),  # the decision code, e.g. "D-4MX9QK2T"
    Column("case_id", String, ForeignKey("cases.id"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("subject", String, nullable=True),  # person id
    Column("subject_key", String, nullable=True),  # keyed IP hash of the person
    Column("room", String, nullable=True),
    Column("stream", String, nullable=True),
    Column("message_id", String, nullable=True),
    Column("facts", Text, nullable=False),
    Column("category", String, nullable=False),
    Column("automated", Boolean, nullable=False),
    Column("moderator", String, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # None: no end
    Column("lifted_at", BigInteger, nullable=True),
    Column("lifted_reason", Text, nullable=False),
    PrimaryKeyConstraint("id"),
    # decisions_of_case(); active_ban/active_mute and the sanction history, newest first.
    Index(None, "case_id", "created_at"),
    Index(None, "subject", "created_at"),
    Index(None, "subject_key", "created_at"),
)

appeals = Table(
    "appeals",
    metadata,
    Column("id", String, nullable=False),
    Column("decision_id", String, ForeignKey("decisions.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),  # "pending", "granted", "rejected"
    Column("decided_by", String, nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("answer", Text, nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("decision_id"),  # one appeal per decision
    # pending_appeals(), oldest first.
    Index(None, "status", "created_at"),
)

# --- moderator accounts --------------------------------------------------------------------------

moderators = Table(
    "moderators",
    metadata,
    Column("id", String, nullable=False),
    Column("login", String, nullable=False),  # lowercased by the caller; compared exactly
    Column("password_hash", String, nullable=False),  # Argon2id
    Column("totp_secret", String, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
    Column("disabled", Boolean, nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("login"),
)

mod_sessions = Table(
    "mod_sessions",
    metadata,
    Column("token_hash", LargeBinary, nullable=False),
    Column("moderator_id", String, ForeignKey("moderators.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("token_hash"),
    Index(None, "moderator_id"),
)

# --- audit log (append-only) ---------------------------------------------------------------------

audit_log = Table(
    "audit_log",
    metadata,
    # INTEGER PRIMARY KEY on SQLite (the rowid, AUTOINCREMENT: never reused), BIGSERIAL on
    # PostgreSQL.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String, nullable=False),  # "mod:<id>", "admin-cli", "system"
    Column("action", String, nullable=False),
    Column("case_id", String, nullable=True),
    Column("target", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON
    Index(None, "case_id"),
    sqlite_autoincrement=True,
)

#: The database itself refuses to change or remove an audit entry, whoever asks (a bug, an
#: operator's ad-hoc SQL, a compromised node with the application's credentials).
#: Migration 0002 creates the same objects (copied there: migrations are frozen).
AUDIT_APPEND_ONLY_MESSAGE: Final = "audit_log is append-only"
AUDIT_LOG_TRIGGERS_SQLITE: Final = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
AUDIT_LOG_TRIGGERS_POSTGRESQL: Final = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def _ddl(statement: str, dialect: str) -> DDL:
    ddl: DDL = DDL(statement)  # type: ignore[no-untyped-call]  # (untyped in SQLAlchemy)
    return ddl.execute_if(dialect=dialect)


for _statement in AUDIT_LOG_TRIGGERS_SQLITE:
    event.listen(audit_log, "after_create", _ddl(_statement, "sqlite"))
for _statement in AUDIT_LOG_TRIGGERS_POSTGRESQL:
    event.listen(audit_log, "after_create", _ddl(_statement, "postgresql"))
event.listen(
    audit_log, "after_drop", _ddl("DROP FUNCTION IF EXISTS audit_log_append_only()", "postgresql")
)

# --- room states ---------------------------------------------------------------------------------

room_states = Table(
    "room_states",
    metadata,
    Column("slug", String, nullable=False),
    Column("state", String(8), nullable=False),  # "frozen", "closed" (open rooms have no row)
    Column("reason", Text, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("slug"),
)
