"""The versioned stores on disk: vectors, variants, editing statistics; durable files and integrity."""
