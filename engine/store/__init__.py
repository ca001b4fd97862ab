"""The result store: SQLite store, integrity check and salvage, disk-space estimate."""
