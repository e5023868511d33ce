//! The vote API: accepts votes into the Redis stream and serves results from PostgreSQL.
