-- Indexes for the dashboard panels that list individual scored messages (issue 7, Performance):
-- "Most positive/negative messages" (ORDER BY sentiment, LIMIT 25) and "Top flagged messages"
-- (ORDER BY toxicity DESC, LIMIT 50), one channel and one model at a time.  With them a panel
-- reads its first rows of the index in score order instead of sorting every score of the range
-- (330,000 a day on a busy channel).  sent_at is a key column, not INCLUDE, so the range filter
-- is checked inside the index (an index condition) before any heap row is fetched; on plain
-- PostgreSQL one index spans the whole history, so that matters there most.  A backward scan
-- gives (score DESC, sent_at DESC), the order both DESC panels ask for.
-- On TimescaleDB every chunk gets its own copy, and a range's chunks are merged in order.
CREATE INDEX IF NOT EXISTS message_scores_sentiment_idx
    ON chat.message_scores (channel_id, model, sentiment, sent_at);
CREATE INDEX IF NOT EXISTS message_scores_toxicity_idx
    ON chat.message_scores (channel_id, model, toxicity, sent_at);
