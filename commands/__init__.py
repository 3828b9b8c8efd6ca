"""Utility commands — mirrors src/backend/commands/ (DDL that is not planned)."""
