"""meshnode: node software for a federated, community-run sharing network."""

__version__ = "0.1.0"
