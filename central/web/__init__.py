"""hall-central's pages and JSON API: the clerks' console, the hall TV, the window
screens and the citizens' live ticket pages (``create_app`` in app.py)."""
