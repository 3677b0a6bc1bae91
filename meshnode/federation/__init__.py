"""ActivityPub federation: discovery, inbox, delivery, peering, relaying and catch-up sync."""
