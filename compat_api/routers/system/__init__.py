"""System endpoints: /_ping, /version, /info, /system/df, /events; swarm and plugin stubs."""
