-- chat.moderation_events.extra: platform fields worth keeping with a moderation event (both
-- backends).  Twitch sends CLEARMSG lines with a negative tmi-sent-ts; such an event is stored
-- at the received (or log) time and the raw stamp is kept here as {"tmi-sent-ts": "..."}, as is
-- the raw value of an unusable ban-duration.  NULL when there is nothing to keep.
--
-- A nullable column without a default: a catalog-only change on PostgreSQL, and allowed on a
-- TimescaleDB hypertable with the columnstore enabled.
ALTER TABLE chat.moderation_events ADD COLUMN extra jsonb;
COMMENT ON COLUMN chat.moderation_events.extra IS
    'Platform fields kept with the event, e.g. the raw tmi-sent-ts when it was unusable';
