"""Alembic migrations for durabot's schema (PostgreSQL and SQLite)."""
