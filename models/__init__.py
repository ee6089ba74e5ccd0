"""Released openl3lite weights (installed as openl3lite.released_models) and their model cards (see registry.json)."""
