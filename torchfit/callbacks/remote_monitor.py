"""``RemoteMonitor``: post each epoch's logs to an HTTP server, as Keras's does."""

from __future__ import annotations

import json
import warnings
from typing import Any, Dict, Optional

import numpy as np

from .. import validation as check
from .callback import Callback, Logs


def _jsonable(value: Any) -> Any:
    """A log value as JSON can carry it (NumPy/torch scalars become numbers)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.item()
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "numel", lambda: 0)() == 1:
        return item()
    return value


def _requests() -> Any:
    try:
        import requests
    except ImportError as error:  # optional dependency, imported when used
        raise ImportError(
            "RemoteMonitor requires the `requests` package (pip install requests)."
        ) from error
    return requests


class RemoteMonitor(Callback):
    """Send ``{"epoch": epoch, **logs}`` to ``root + path`` at the end of every epoch.

    Args:
        root (str): the server, default ``"http://localhost:9000"``.
        path (str): the route, default ``"/publish/epoch/end/"``.
        field (str): the form field holding the JSON text when not
            ``send_as_json``, default ``"data"``.
        headers (dict, optional): HTTP headers to send.
        send_as_json (bool): post a JSON body (``application/json``) instead
            of a form, default False.

    A server that cannot be reached is a warning, not an error (training
    goes on). Needs the ``requests`` package; runs on the main process only.
    """

    main_process_only = True  # writes files or posts: rank 0 only

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/",
                 field: str = "data", headers: Optional[Dict[str, str]] = None,
                 send_as_json: bool = False) -> None:
        super().__init__()
        owner = type(self).__name__
        self.root = check.check_string(root, "root", owner=owner)
        self.path = check.check_string(path, "path", allow_empty=True, owner=owner)
        self.field = check.check_string(field, "field", owner=owner)
        if headers is not None and not isinstance(headers, dict):
            raise TypeError(f"{owner}: argument `headers` must be a dict or None. "
                            f"Received: {headers!r} of type {type(headers).__name__}.")
        self.headers = headers
        self.send_as_json = check.check_bool(send_as_json, "send_as_json", owner=owner)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        requests = _requests()
        send = {"epoch": epoch}
        send.update({key: _jsonable(value) for key, value in (logs or {}).items()})
        try:
            if self.send_as_json:
                requests.post(self.root + self.path, json=send, headers=self.headers)
            else:
                requests.post(self.root + self.path, {self.field: json.dumps(send)},
                              headers=self.headers)
        except requests.exceptions.RequestException:
            warnings.warn(
                f"Could not reach RemoteMonitor root server at {self.root}",
                stacklevel=2,
            )
