"""Result files: the versioned row schema, the one reader and writer, provenance stamps."""
