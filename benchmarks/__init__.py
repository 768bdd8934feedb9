"""Repeatable performance runs; each prints its rate next to a raw baseline measured in the same run."""
