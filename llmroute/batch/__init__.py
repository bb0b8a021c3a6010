"""Many prompts through the whole pool: input lines as jobs, results as JSON lines."""
