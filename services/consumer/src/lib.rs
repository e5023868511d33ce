//! The vote consumer: counts each vote of the Redis stream exactly once in PostgreSQL.
