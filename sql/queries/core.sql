-- The core's queries: migrations (chatpulse/core/migrate.py), aggregates
-- (chatpulse/core/aggregates.py) and stream hints (chatpulse/core/hints.py).  The statement
-- that creates chat.schema_migrations itself stays in migrate.py (it runs before anything
-- else).  Statements that name a role or a database are composed with psycopg.sql.Identifier
-- in migrate.py.  Loaded by chatpulse.core.queries.load_queries("core").

-- name: schema_backend
-- The backend the newest migration was applied for (timescaledb or postgres).
SELECT backend FROM chat.schema_migrations ORDER BY version DESC LIMIT 1;

-- name: refresh_aggregates
-- Plain PostgreSQL: recompute the aggregate buckets changed since the last refresh (pieces).
SELECT chat.refresh_aggregates();

-- name: refresh_continuous_aggregate
-- TimescaleDB: refresh one continuous aggregate over [lo, hi) (NULL: unbounded).
CALL refresh_continuous_aggregate(%(view)s, %(lo)s, %(hi)s);

-- name: add_stream_hint
-- Record a known stream start; a hint already there keeps what the new one does not say, and
-- changes (with a new added_xid, so the analyze job sees it) only for a new title or category.
INSERT INTO chat.stream_hints (channel_id, at, found_by, title, category)
VALUES (%(channel_id)s, %(at)s, %(found_by)s, %(title)s, %(category)s)
ON CONFLICT (channel_id, at) DO UPDATE SET
    title = coalesce(EXCLUDED.title, chat.stream_hints.title),
    category = coalesce(EXCLUDED.category, chat.stream_hints.category),
    added_xid = pg_current_xact_id()
WHERE (coalesce(EXCLUDED.title, chat.stream_hints.title),
       coalesce(EXCLUDED.category, chat.stream_hints.category))
      IS DISTINCT FROM (chat.stream_hints.title, chat.stream_hints.category);

-- name: timescaledb_version
-- The installed TimescaleDB extension's version (no row: not installed).
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb';

-- name: timescaledb_available
-- Whether the server has the TimescaleDB extension's files.
SELECT true FROM pg_available_extensions WHERE name = 'timescaledb';

-- name: preload_libraries
-- The server's shared_preload_libraries (TimescaleDB must be named there).
SELECT current_setting('shared_preload_libraries');

-- name: create_timescaledb
-- Install the TimescaleDB extension in this database.
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- name: lock_migrations
-- Serialise concurrent migrate runs (session advisory lock).
SELECT pg_advisory_lock(%(key)s);

-- name: unlock_migrations
-- Release the lock of lock_migrations.
SELECT pg_advisory_unlock(%(key)s);

-- name: applied_migrations
-- Every migration applied so far.
SELECT version, name, backend, checksum FROM chat.schema_migrations;

-- name: record_migration
-- Record one applied migration.
INSERT INTO chat.schema_migrations (version, name, backend, checksum)
VALUES (%(version)s, %(name)s, %(backend)s, %(checksum)s);

-- name: timescaledb_license
-- TimescaleDB's license (apache: no policies), NULL when unknown.
SELECT current_setting('timescaledb.license', true);

-- name: remove_columnstore_policy
-- Remove a hypertable's columnstore policy, if any.
CALL remove_columnstore_policy(%(rel)s, if_exists => true);

-- name: add_columnstore_policy
-- Compress a hypertable's chunks older than the interval.
CALL add_columnstore_policy(%(rel)s, after => %(after)s::interval, if_not_exists => true);

-- name: remove_retention_policy
-- Remove a hypertable's retention policy, if any.
SELECT remove_retention_policy(%(rel)s, if_exists => true);

-- name: add_retention_policy
-- Drop a hypertable's chunks older than the interval.
SELECT add_retention_policy(%(rel)s, drop_after => %(after)s::interval, if_not_exists => true);

-- name: retention_too_short
-- Whether a retention interval is shorter than the aggregates' refresh window (7 days + 1).
SELECT %(retention)s::interval < INTERVAL '8 days';

-- name: may_create_roles
-- Whether the connecting role may create and alter roles.
SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user;

-- name: role_exists
-- Whether a role exists (no row: it does not).
SELECT true FROM pg_roles WHERE rolname = %(role)s;

-- name: current_database
-- This database's name.
SELECT current_database();

-- name: reader_relations
-- Which of the given relations exist in schema chat (the reader is granted those).
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'chat' AND c.relname = ANY(%(names)s);

-- name: may_create_in_public
-- Whether a role may create tables in schema public.
SELECT has_schema_privilege(%(role)s, 'public', 'CREATE');

-- name: has_temporary
-- Whether a role may create temporary tables in this database.
SELECT has_database_privilege(%(role)s, current_database(), 'TEMPORARY');

-- name: roles_with_temporary
-- The other roles (not superusers, not pg_*, not roles the reader is a member of) that may
-- create temporary tables here: they are granted TEMPORARY before PUBLIC's grant goes.
SELECT r.rolname FROM pg_roles r, pg_roles reader
WHERE reader.rolname = %(role)s AND r.oid <> reader.oid AND NOT r.rolsuper
  AND r.rolname !~ '^pg_' AND NOT pg_has_role(reader.oid, r.oid, 'MEMBER')
  AND has_database_privilege(r.oid, current_database(), 'TEMPORARY')
ORDER BY 1;
