-- TimescaleDB only: the raw chat tables become hypertables (they are still empty here).
-- create_default_indexes => false: 0001 already made the sent_at DESC indexes.
SELECT create_hypertable('chat.messages', by_range('sent_at', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true);
SELECT create_hypertable('chat.emote_uses', by_range('sent_at', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true);
SELECT create_hypertable('chat.moderation_events', by_range('at', INTERVAL '7 days'),
                         create_default_indexes => false, if_not_exists => true);
SELECT create_hypertable('chat.message_scores', by_range('sent_at', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true);

-- Columnstore layout, so that policies (set from settings by `chatpulse migrate`) can compress.
-- The unique key's columns are in segmentby/orderby, as ON CONFLICT on compressed chunks wants.
ALTER TABLE chat.messages SET (timescaledb.enable_columnstore,
    timescaledb.segmentby = 'channel_id', timescaledb.orderby = 'sent_at DESC, message_id');
ALTER TABLE chat.emote_uses SET (timescaledb.enable_columnstore,
    timescaledb.segmentby = 'channel_id', timescaledb.orderby = 'sent_at DESC, message_id, provider, emote_id');
ALTER TABLE chat.moderation_events SET (timescaledb.enable_columnstore,
    timescaledb.segmentby = 'channel_id', timescaledb.orderby = 'at DESC, event_key');
ALTER TABLE chat.message_scores SET (timescaledb.enable_columnstore,
    timescaledb.segmentby = 'channel_id, model', timescaledb.orderby = 'sent_at DESC, message_id');
