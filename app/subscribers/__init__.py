"""The consent domain: sign-up, confirmation, opt-out, suppression, erasure, export, import."""
