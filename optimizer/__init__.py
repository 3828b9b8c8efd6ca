"""The planner: query trees to executable plans — mirrors src/backend/optimizer/."""
