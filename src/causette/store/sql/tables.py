"""The schema, in SQLAlchemy Core. One schema for SQLite and PostgreSQL.

Times are integers: milliseconds since the Unix epoch (``BigInteger``). Every change here needs a
migration in ``causette/store/migrations/versions`` (``tests/store/test_migrations.py`` fails
while they disagree).

Constraints and indexes carry explicit names (the naming convention below) so that later
migrations can drop or alter them on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
    PrimaryKeyConstraint("id"),
    UniqueConstraint("token_hash"),
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
