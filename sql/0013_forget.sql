-- `chatpulse forget --user LOGIN` (issue 13): users who must never come back.
--
-- The writer drops every message by, and every moderation event against, a user listed here
-- (by case-folded login or by user id, on the row's platform or on every platform when
-- platform is NULL), so a later replay, gap fill or spool drain does not bring them back.
-- Only the identifiers are kept: nothing the user wrote.  Not part of the SQL contract:
-- chatpulse_reader cannot read it.
CREATE TABLE chat.forgotten_users (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform      text,
    user_login    text        CHECK (user_login = lower(user_login)),
    user_id       text,
    forgotten_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT forgotten_users_who CHECK (user_login IS NOT NULL OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX forgotten_users_key
    ON chat.forgotten_users (platform, user_login, user_id) NULLS NOT DISTINCT;
COMMENT ON TABLE chat.forgotten_users IS 'Tombstones of chatpulse forget: the writer never stores these users again.';
COMMENT ON COLUMN chat.forgotten_users.platform IS 'NULL: every platform';
