"""The executor: plans compiled into closures over flat rows — mirrors
src/backend/executor/."""
