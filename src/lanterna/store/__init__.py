"""Storage: the database, the single writer, migrations and one query module per resource."""
