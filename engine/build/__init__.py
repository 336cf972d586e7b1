"""Dockerfile builds (issue 6)."""
