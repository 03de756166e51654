"""Storage: SQLAlchemy models, repositories and migrations for PostgreSQL and SQLite."""
