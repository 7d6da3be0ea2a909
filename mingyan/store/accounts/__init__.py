"""AccountStore in the database: users and login sessions, API keys, quotas, usage and the audit log.

- `account_store`  AccountStore: the three stores of one database, built together
- `users`          UserStore: users, passwords, roles, disabling, deletion, login sessions
- `keys`           KeyStore: API keys (shown once, stored hashed), their limits
- `ledger`         Ledger: quotas, usage records, the append-only audit log
- `types`          the frozen snapshots these return (no secret in any)
- `credentials`    usernames, passwords (argon2id), tokens and key digests
- `rows`           row helpers they share
"""
