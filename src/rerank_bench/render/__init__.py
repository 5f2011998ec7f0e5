"""Terminal views, one per command: tables and notes from library results, no measuring."""
