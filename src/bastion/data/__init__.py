"""Bastion data package."""
