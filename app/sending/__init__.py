"""Rendering, SMTP transport and the crash-safe dispatcher."""
