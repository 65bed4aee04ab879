"""Moderation: sessions.ip_key; cases, reports, evidence, decisions, appeals, moderators,
mod_sessions, the append-only audit_log (enforced by triggers) and room_states.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("ended_at IS NULL")
ENDED = sa.text("ended_at IS NOT NULL")
OPEN = sa.text("status = 'open'")

# Frozen copies of causette.store.sql.tables.AUDIT_LOG_TRIGGERS_* as of this revision.
AUDIT_LOG_TRIGGERS_SQLITE = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
AUDIT_LOG_TRIGGERS_POSTGRESQL = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)

SESSION_COLUMNS = (
    "id",
    "token_hash",
    "pseudonym_key",
    "name",
    "gender",
    "age",
    "commune",
    "dep",
    "region",
    "postal_code",
    "commune_code",
    "lang",
    "pm_policy",
    "created_at",
    "last_seen",
    "ended_at",
)


def _dialect() -> str:
    return op.get_context().dialect.name


def _create_sessions_with_ip_key(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("pseudonym_key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("commune", sa.String(), nullable=False),
        sa.Column("dep", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("postal_code", sa.String(), nullable=False),
        sa.Column("commune_code", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=False),
        sa.Column("pm_policy", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("ip_key", sa.String(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )


def _drop_session_indexes() -> None:
    op.drop_index("ix_sessions_ended_at", table_name="sessions")
    op.drop_index("ix_sessions_live_last_seen", table_name="sessions")
    op.drop_index("uq_sessions_live_pseudonym_key", table_name="sessions")


def _create_session_indexes() -> None:
    op.create_index(
        "uq_sessions_live_pseudonym_key",
        "sessions",
        ["pseudonym_key"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_sessions_live_last_seen",
        "sessions",
        ["last_seen"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_sessions_ended_at",
        "sessions",
        ["ended_at"],
        sqlite_where=ENDED,
        postgresql_where=ENDED,
    )


def _add_session_ip_key() -> None:
    if _dialect() != "sqlite":
        op.add_column(
            "sessions", sa.Column("ip_key", sa.String(), server_default="", nullable=False)
        )
        return
    # SQLite: rebuild the table (SQLite's "generalized ALTER TABLE" procedure) rather than
    # ALTER TABLE ADD COLUMN, so that the schema is exactly what tables.py creates (the column
    # before the constraints). Nothing references sessions by foreign key.
    _drop_session_indexes()
    op.rename_table("sessions", "_sessions_0001")
    _create_sessions_with_ip_key("sessions")
    old = sa.table("_sessions_0001", *(sa.column(name) for name in SESSION_COLUMNS))
    new = sa.table("sessions", *(sa.column(name) for name in SESSION_COLUMNS))
    op.execute(new.insert().from_select(list(SESSION_COLUMNS), sa.select(*old.c)))
    op.drop_table("_sessions_0001")
    _create_session_indexes()


def upgrade() -> None:
    _add_session_ip_key()
    op.create_index(op.f("ix_sessions_ip_key"), "sessions", ["ip_key"])

    op.create_table(
        "cases",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target_key", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("subject_name", sa.String(), nullable=False),
        sa.Column("room", sa.String(), nullable=True),
        sa.Column("stream", sa.String(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("reporters", sa.Integer(), nullable=False),
        sa.Column("automated", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index(
        op.f("ix_cases_status_severity_created_at"),
        "cases",
        ["status", "severity", "created_at"],
    )
    op.create_index(op.f("ix_cases_subject_created_at"), "cases", ["subject", "created_at"])
    op.create_index(
        "uq_cases_open_target_key",
        "cases",
        ["target_key"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )

    op.create_table(
        "reports",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("reporter", sa.String(), nullable=False),
        sa.Column("reporter_key", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("good_faith", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("case_id", "reporter", name=op.f("uq_reports_case_id_reporter")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_reports_case_id_cases")),
    )
    op.create_index(
        op.f("ix_reports_reporter_key_created_at"), "reports", ["reporter_key", "created_at"]
    )

    op.create_table(
        "evidence",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("captured_at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_evidence_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", "n", name=op.f("pk_evidence")),
    )

    op.create_table(
        "decisions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("subject_key", sa.String(), nullable=True),
        sa.Column("room", sa.String(), nullable=True),
        sa.Column("stream", sa.String(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("automated", sa.Boolean(), nullable=False),
        sa.Column("moderator", sa.String(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("lifted_at", sa.BigInteger(), nullable=True),
        sa.Column("lifted_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_decisions_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_case_id_created_at"), "decisions", ["case_id", "created_at"])
    op.create_index(op.f("ix_decisions_subject_created_at"), "decisions", ["subject", "created_at"])
    op.create_index(
        op.f("ix_decisions_subject_key_created_at"), "decisions", ["subject_key", "created_at"]
    )

    op.create_table(
        "appeals",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("decision_id", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_appeals_decision_id")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_appeals_decision_id_decisions")
        ),
    )
    op.create_index(op.f("ix_appeals_status_created_at"), "appeals", ["status", "created_at"])

    op.create_table(
        "moderators",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("login", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("totp_secret", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderators")),
        sa.UniqueConstraint("login", name=op.f("uq_moderators_login")),
    )

    op.create_table(
        "mod_sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("moderator_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["moderators.id"],
            name=op.f("fk_mod_sessions_moderator_id_moderators"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_mod_sessions")),
    )
    op.create_index(op.f("ix_mod_sessions_moderator_id"), "mod_sessions", ["moderator_id"])

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=True),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_log_case_id"), "audit_log", ["case_id"])
    triggers = {"sqlite": AUDIT_LOG_TRIGGERS_SQLITE, "postgresql": AUDIT_LOG_TRIGGERS_POSTGRESQL}
    for statement in triggers.get(_dialect(), ()):
        op.execute(statement)

    op.create_table(
        "room_states",
        sa.Column("slug", sa.String(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_room_states")),
    )


def downgrade() -> None:
    op.drop_table("room_states")
    op.drop_table("audit_log")  # its triggers go with it
    if _dialect() == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("mod_sessions")
    op.drop_table("moderators")
    op.drop_table("appeals")
    op.drop_table("decisions")
    op.drop_table("evidence")
    op.drop_table("reports")
    op.drop_table("cases")
    op.drop_index(op.f("ix_sessions_ip_key"), table_name="sessions")
    op.drop_column("sessions", "ip_key")
