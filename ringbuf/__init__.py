"""Lock-free shared-memory ring buffers (single producer, one cursor per consumer)."""
