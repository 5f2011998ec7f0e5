"""Which model a name means: catalog aliases, Hub ids and folders resolved, architecture twins, FLOPs, heads."""
