"""The engine's Docker-compatible HTTP API: routing, streaming, error mapping."""
