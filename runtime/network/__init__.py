"""Container networking: IPAM, Linux bridges and veths, firewall rules, embedded DNS,
published ports, and the NetworkService behind ``/networks`` and the container hooks."""
