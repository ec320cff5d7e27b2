"""ScaiCrew control-plane API: composition root (settings, app factory, command line)."""
