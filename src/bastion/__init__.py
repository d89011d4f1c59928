"""Bastion: Constitutional Classifiers for any LLM, and the red teaming that measures them."""

__version__ = "0.1.0"

from bastion.constitution import Constitution  # noqa: E402
from bastion.data.records import Example, Message  # noqa: E402
from bastion.errors import BastionError  # noqa: E402
from bastion.guard import Guard, Verdict  # noqa: E402

__all__ = ["BastionError", "Constitution", "Example", "Guard", "Message", "Verdict", "__version__"]
