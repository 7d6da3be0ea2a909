"""The database: SQLite by default, PostgreSQL for scale. Nothing here knows about models or HTTP.

- `db`             Database: the SQLAlchemy engine, write and read sessions (SQLite pragmas)
- `tables`         the tables; `migrate` and `migrations/` (Alembic, versioned)
- `conversations`  ConversationStore: conversations and their message trees, owner-checked
- `search`         full-text search of one owner's messages and titles (Chinese and English)
- `accounts/`      users and login sessions, API keys, the ledger (quotas, usage, audit log)
- `transfer/`      export and import (mingyan JSON, ChatGPT, Markdown), all or nothing
- `backup`         online backups (SQLite backup API, pg_dump) and restores
- `errors`         NotFound, Conflict, InvalidValue, ... (mapped to HTTP statuses by the API)
"""
