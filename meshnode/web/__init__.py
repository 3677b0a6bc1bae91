"""The HTTP edge: JSON API, (later) HTML pages and ActivityPub endpoints."""
