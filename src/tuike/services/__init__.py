"""Use cases: one verb, one transaction (the caller opens it with ``db.write()``)."""
