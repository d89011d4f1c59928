"""Bastion evaluation package."""
