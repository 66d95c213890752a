"""Marketplace syndication: upstream catalogue, downloads, platform images, gallery items."""
