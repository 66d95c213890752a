"""Content-addressed blob storage that compute and the marketplace share."""
