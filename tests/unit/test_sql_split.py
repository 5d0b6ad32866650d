"""split_statements and the migration file layout."""

from __future__ import annotations

from chatpulse.core.migrate import load_migrations, split_statements


def test_split_keeps_dollar_quoted_bodies_strings_and_comments_whole() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x text DEFAULT 'it''s; fine');
    /* block; comment */
    CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
    CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 2; END $body$;
    SELECT "semi;colon" FROM a;
    ;
    """
    parts = split_statements(script)
    assert len(parts) == 4
    assert parts[0].endswith("DEFAULT 'it''s; fine')")
    assert "RETURN 1; END $$" in parts[1]
    assert "RETURN 2; END $body$" in parts[2]
    assert parts[3].endswith('SELECT "semi;colon" FROM a')


def test_split_last_statement_without_semicolon_and_comment_only() -> None:
    assert split_statements("SELECT 1") == ["SELECT 1"]
    assert split_statements("-- nothing here\n") == []


def test_shipped_migrations_are_numbered_and_cover_both_backends() -> None:
    migrations = load_migrations()
    versions = sorted({m.version for m in migrations})
    assert versions == list(range(1, len(versions) + 1))
    assert any(m.backend == "timescaledb" and not m.transactional for m in migrations)
    assert all(m.transactional for m in migrations if m.backend != "timescaledb")
