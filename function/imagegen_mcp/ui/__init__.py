"""The gallery MCP App (ui://imagegen/gallery): server wiring in app.py, the built gallery.html, its source in src/."""
