"""Durable conversations: SQLAlchemy tables, repository functions, Alembic migrations.

SQLite by default, PostgreSQL for scale. Nothing here knows about models or HTTP.
"""
