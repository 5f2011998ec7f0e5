"""Thresholds every command applies the same way, defined once."""

# Above this share of the machine taken by other processes, a case's figures are flagged as likely low
# (sweep warns, compare flags, the views mark the row).
BUSY_PCT = 10.0

# A served load level with this fraction of failed requests or more does not meet an SLO, whatever its
# latency says.
MAX_ERROR_FRACTION = 0.01
