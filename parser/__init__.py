"""Parse analysis: raw parse trees (pglast's JSON of PostgreSQL 15's grammar) to
typed query trees — mirrors src/backend/parser/."""
