-- A full run replaces every decision.
DELETE FROM decisions
