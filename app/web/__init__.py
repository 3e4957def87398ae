"""HTTP layer: public pages, the admin UI and the /api/v1 JSON API."""
