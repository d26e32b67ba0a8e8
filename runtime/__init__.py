"""pydockerd's engine: containers, images, networks, volumes, events. No HTTP here."""
