"""Bastion models package."""
