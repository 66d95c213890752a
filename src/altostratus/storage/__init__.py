"""Microsoft.Storage: storage accounts as ARM resources, and their blob data plane (blob_service.py)."""
