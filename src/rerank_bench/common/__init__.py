"""Rules every command shares: statistics, case keys, option lists, thresholds (floor 1, below all the rest)."""
