"""Microsoft.Network: virtual networks, subnets, NICs, public IPs, load balancers, security groups (control plane)."""
