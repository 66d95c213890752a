"""Altostratus: a self-hosted, Azure Stack Hub-compatible cloud for virtual machine scale sets."""

__version__ = "0.1.0"
