"""Data: records, JSONL I/O, seeds, development-pool loaders, transforms, splits."""
