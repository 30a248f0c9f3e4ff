"""Data diffs between a source slice and a target slice, each possibly on another dialect."""

from .countdiff import CountDiff, count_diff

__all__ = ["CountDiff", "count_diff"]
