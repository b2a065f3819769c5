"""Design-space exploration: sweep model and hardware knobs (first landing: the search-space file)."""
