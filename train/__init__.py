"""Training scripts for the bundled models (run by hand, never in CI or at start-up)."""
