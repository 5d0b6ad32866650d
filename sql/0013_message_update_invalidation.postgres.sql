-- Plain PostgreSQL only: an UPDATE of chat.messages (emote_count, after `chatpulse emotes
-- rematch` or a replay that found emotes in messages already stored) logs its time range, so
-- chat.refresh_aggregates() recomputes the per-minute emote uses from the new counts.
-- (TimescaleDB tracks UPDATEs on a hypertable by itself.)
CREATE OR REPLACE TRIGGER messages_invalidate_upd AFTER UPDATE ON chat.messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
