"""The outage journal (G8): a local SQLite store that steps continue on while the primary database is away."""
