"""Model lifecycle: the registry of trained models (and, to come, monitors and rollout)."""
