-- Counts per option. A count only grows in the transaction that records the request ids it counts.
CREATE TABLE IF NOT EXISTS vote_counts (
    option     TEXT PRIMARY KEY,
    count      BIGINT NOT NULL DEFAULT 0 CHECK (count >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per counted vote: the primary key is what makes counting exactly-once.
CREATE TABLE IF NOT EXISTS processed_votes (
    request_id   UUID PRIMARY KEY,
    option       TEXT NOT NULL,
    stream_id    TEXT NOT NULL,
    voted_at     TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
