"""Data types, operators and functions — mirrors src/backend/utils/adt/."""
