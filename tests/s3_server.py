"""A local S3 for tests: moto's server on a free 127.0.0.1 port, started as a subprocess (no network).

Import the fixtures into a test module (``from tests.s3_server import s3_env``). ``s3_env`` points boto3 at
the server through the environment (``AWS_ENDPOINT_URL`` and dummy credentials) for the module, and keeps any
real AWS configuration of the machine out of reach.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Run moto's S3 server until the block ends; yield its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with code {process.returncode} before listening")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not listen on port {port} within {timeout} s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory) -> Iterator[str]:
    """Environment pointing boto3 at a fresh moto server for the module; yields the endpoint URL."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    if not MOTO_SERVER.exists():
        pytest.skip(f"moto's server is not installed ({MOTO_SERVER} is missing; pip install 'moto[server]')")
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("AWS_CONFIG_FILE", str(nowhere))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        yield endpoint


def new_bucket(prefix: str = "retail") -> str:
    """Create a bucket with a unique name on the current endpoint and return the name."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def no_credentials(monkeypatch):
    """Remove the dummy credentials (the endpoint stays), as on a machine with no AWS configuration."""
    import boto3

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    # boto3's default session keeps the credentials it resolved first; start from a new one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
