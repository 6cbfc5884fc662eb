"""Wire formats in, domain events out: every format is parsed in exactly one module here."""
