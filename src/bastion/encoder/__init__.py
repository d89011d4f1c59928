"""The pretrained text encoder (all-MiniLM-L6-v2) behind stage 2: export and inference."""
