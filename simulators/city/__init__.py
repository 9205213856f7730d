"""City simulator: a seeded, event-time city that drives a dispatcher and measures it."""
