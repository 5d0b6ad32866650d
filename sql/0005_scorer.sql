-- Scorer bookkeeping (both backends).  The claim protocol is explained in scorer/loop.py.
--
-- Work is ordered by (ingest_xid, ingest_seq), not by ingest_seq alone: a sequence value is
-- taken when a row is inserted, not when its transaction commits, so a seq cursor can pass a
-- row whose transaction commits later.  Every row with ingest_xid below the snapshot's xmin
-- belongs to a finished transaction, so that prefix of the (xid, seq) order never grows again.
CREATE INDEX messages_ingest_xid_idx ON chat.messages (ingest_xid, ingest_seq);

-- One row per model (name@version): every message at or before (cursor_xid, cursor_seq) has
-- been handed out in a claim; a new model starts at the beginning, so old messages are
-- backfilled.
CREATE TABLE chat.scorer_progress (
    model        text        PRIMARY KEY,
    cursor_xid   xid8        NOT NULL DEFAULT '0'::xid8,
    cursor_seq   bigint      NOT NULL DEFAULT 0,
    claims       bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE chat.scorer_progress IS 'Per model: how far the scorer has handed out messages (ingest_xid, ingest_seq).';

-- A range of messages ((lo] .. hi], in (ingest_xid, ingest_seq) order) handed to one worker.
-- The row is deleted in the transaction that writes the range's scores.  The worker owns it
-- through a session advisory lock on (scorer lock namespace, id): a worker that dies loses the
-- lock with its connection and another worker adopts the claim.
CREATE TABLE chat.scoring_claims (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text        NOT NULL REFERENCES chat.scorer_progress (model) ON DELETE CASCADE,
    lo_xid       xid8        NOT NULL,
    lo_seq       bigint      NOT NULL,
    hi_xid       xid8        NOT NULL,
    hi_seq       bigint      NOT NULL,
    messages     integer     NOT NULL,
    attempts     integer     NOT NULL DEFAULT 1,
    worker       text,
    claimed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scoring_claims_model_idx ON chat.scoring_claims (model, id);
COMMENT ON TABLE chat.scoring_claims IS 'Message ranges being scored; a row left behind by a dead worker is adopted by another.';

-- Messages a model could not score, with the reason (instead of a score row).
CREATE TABLE chat.scoring_failures (
    sent_at     timestamptz NOT NULL,
    channel_id  integer     NOT NULL,
    message_id  text        NOT NULL,
    model       text        NOT NULL,
    reason      text        NOT NULL,
    detail      text,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scoring_failures_key UNIQUE (channel_id, message_id, sent_at, model)
);
COMMENT ON TABLE chat.scoring_failures IS 'Messages that got no score row, and why (backend error, invalid score, worker crashes).';
COMMENT ON COLUMN chat.scoring_failures.reason IS 'backend-error, invalid-score, write-error or worker-crash';
CREATE INDEX scoring_failures_time_idx ON chat.scoring_failures (failed_at DESC);
