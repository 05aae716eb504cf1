"""Baseline policies every agent is measured against."""
