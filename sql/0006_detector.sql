-- Detector bookkeeping (issue 6): per-channel watermark so live runs are incremental, and the
-- message counts that bursts are judged on.

-- processed_until: windows ending at or before it are final (the detector re-examines a short
-- late window before it each pass).  first_message_at: the channel's first message when last
-- seen; an earlier one (a replay of older chat) makes the detector redo the channel.
-- gaps_seen_at: the newest chat.gaps.filled_at already taken into account.
CREATE TABLE chat.detector_state (
    channel_id        integer     PRIMARY KEY REFERENCES chat.channels (id) ON DELETE CASCADE,
    processed_until   timestamptz NOT NULL,
    first_message_at  timestamptz NOT NULL,
    gaps_seen_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE chat.detector_state IS 'Where the burst/hype detector stands, per channel.';

ALTER TABLE chat.emote_bursts ADD COLUMN peak_messages integer;
ALTER TABLE chat.emote_bursts ADD COLUMN baseline_messages real;
COMMENT ON COLUMN chat.emote_bursts.peak_uses IS 'Uses of the emote in the peak 10-second window';
COMMENT ON COLUMN chat.emote_bursts.baseline IS 'Expected uses per 10 s from the channel''s own recent past';
COMMENT ON COLUMN chat.emote_bursts.peak_messages IS 'Messages containing the emote in the peak 10-second window (what is judged)';
COMMENT ON COLUMN chat.emote_bursts.baseline_messages IS 'Expected messages containing the emote per 10 s';
COMMENT ON COLUMN chat.emote_bursts.score IS '-log10 of the tail probability of the peak under the baseline';
COMMENT ON COLUMN chat.hype_moments.messages_per_min IS 'Chat rate in the peak 10-second window, per minute';
COMMENT ON COLUMN chat.hype_moments.baseline_per_min IS 'The channel''s normal rate (median of the last 30 min), per minute';
COMMENT ON COLUMN chat.hype_moments.sample_messages IS 'Representative messages: [{"user": login, "text": ..., "at": ...}]';
