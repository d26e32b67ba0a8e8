"""The image endpoints (/images/...): import, list, inspect, history, tag, delete,
save, load, prune, search."""
