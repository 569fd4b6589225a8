"""The engine: scheduling, claims, the lockout guard, probing, grading and the result writer."""
