"""Bastion: Constitutional Classifiers for any LLM, and the red teaming that measures them."""

__version__ = "0.1.0"

from bastion.constitution import Constitution
from bastion.data.records import Example, Message
from bastion.errors import BastionError
from bastion.guard import Guard, Verdict

__all__ = ["BastionError", "Constitution", "Example", "Guard", "Message", "Verdict", "__version__"]
