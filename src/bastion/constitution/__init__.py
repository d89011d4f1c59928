"""Constitutions: validated YAML rules that define what a guard restricts and permits."""

from bastion.constitution.loader import bundled_names, load, parse, resolve
from bastion.constitution.schema import Category, Constitution, OperatingPoint

__all__ = ["Category", "Constitution", "OperatingPoint", "bundled_names", "load", "parse", "resolve"]
