"""Microsoft.Compute: scale sets, scale-set VMs, image catalogue views."""
