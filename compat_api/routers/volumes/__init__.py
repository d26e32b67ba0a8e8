"""The /volumes area: list, create, inspect, remove, prune, and update (swarm only)."""
