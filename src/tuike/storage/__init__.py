"""Storage: SQLAlchemy Core tables, repositories and migrations (SQLite and PostgreSQL)."""
