"""Use cases: plain async functions over the store, called by the web layer and the CLI."""
