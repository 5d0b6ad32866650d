-- Hype, foreseen (issue 17, section 3), both backends: the forecast's per-hop predictions.
-- `chatpulse forecast` trains a classifier per channel on the channel's own detected moments
-- (chat.hype_moments) and writes, at the end of each 5-s hop, the probability that a hype
-- moment peaks within the next horizon_s seconds, seen from the chat before `at` only.
-- A plain table on both backends: one row per channel and hop (17 280 a day per channel).

CREATE TABLE chat.hype_forecasts (
    channel_id       integer     NOT NULL REFERENCES chat.channels (id),
    at               timestamptz NOT NULL,
    probability      real        NOT NULL CHECK (probability >= 0 AND probability <= 1),
    likely           boolean     NOT NULL,
    horizon_s        integer     NOT NULL CHECK (horizon_s > 0),
    threshold        real        NOT NULL,
    trained_moments  integer     NOT NULL,
    trained_at       timestamptz NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hype_forecasts_pkey PRIMARY KEY (channel_id, at)
);
COMMENT ON TABLE chat.hype_forecasts IS
    'Per channel and 5-s hop: probability that a hype moment peaks within horizon_s after at (from past chat only)';
CREATE INDEX hype_forecasts_likely_idx ON chat.hype_forecasts (channel_id, at) WHERE likely;
