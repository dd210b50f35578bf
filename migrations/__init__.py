"""Numbered, forward-only SQL migrations and their runner (``python -m migrations``)."""

from migrations.runner import MigrationError, apply_migrations, discover

__all__ = ["MigrationError", "apply_migrations", "discover"]
