"""AccountStore: the service layer for users, sessions, keys, quotas, usage and audit."""
