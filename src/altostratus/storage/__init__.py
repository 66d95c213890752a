"""Microsoft.Storage: storage accounts as ARM resources (no data service)."""
