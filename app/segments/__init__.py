"""Saved audience filters (segments): rules -> SQL, and their CRUD, count and preview.

Imports only models, errors and paging: campaigns (the audience) and subscribers (the
list's filters) build on it, never the other way round.
"""
