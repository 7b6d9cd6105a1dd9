"""The Python SDK that sends events to an xebench service."""

from .sdk import Client, ClientError

__all__ = ["Client", "ClientError"]
