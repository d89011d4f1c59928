"""LLM backends for the three jobs an LLM does in Constitutional Classifiers: writing
synthetic training data (`generate`), grading (`judge`) and attacking (`attacker`), all
over one OpenAI-compatible `Backend`."""

from bastion.llm.backend import Backend, Completion, Usage, connect
from bastion.llm.cache import ResponseCache, request_key
from bastion.llm.config import EMBEDDED, BackendConfig, load_backend_config
from bastion.llm.filters import actionable
from bastion.llm.generate import GenerateConfig, GenerateResult, Generator, plan, requests_per_job, responses_path
from bastion.llm.templates import PromptTemplate, template

__all__ = [
    "EMBEDDED", "Backend", "BackendConfig", "Completion", "GenerateConfig", "GenerateResult", "Generator", "PromptTemplate",
    "ResponseCache", "Usage", "actionable", "connect", "load_backend_config", "plan", "request_key", "requests_per_job",
    "responses_path", "template",
]
