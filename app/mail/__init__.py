"""Neutral mail helpers every layer may import: addresses, SMTP URLs, transactional mail."""
