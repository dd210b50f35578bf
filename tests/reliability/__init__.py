"""Reliability drills (see docs/reliability.md)."""
