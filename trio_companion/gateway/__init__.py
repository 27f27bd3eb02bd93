"""Discord's gateway, REST API and interactions: knows Discord, not the companion."""
