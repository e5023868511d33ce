//! Test harness: real redis-server and PostgreSQL on free loopback ports with throwaway data.
