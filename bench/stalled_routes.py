"""`python -m bench.stalled_routes`: how long each operator route takes to answer when every storage request stalls.

Azurite behind the fault proxy, every answer held for 60 s; the routes are called as the functions call them, with
the app's default timeouts. Prints one line per route: its status code and seconds to answer.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from sandbox.faultproxy import FaultProxy

if TYPE_CHECKING:
    from sync_core.web.responses import ApiResponse


def main() -> None:
    from sync_core import services
    from sync_core.web import api
    from sync_core.web.health import health

    with (
        tempfile.TemporaryDirectory() as workdir,
        Azurite(Path(workdir)) as azurite,
        FaultProxy(azurite.blob_port, stall_s=60) as proxy,
    ):
        os.chdir(workdir)  # no local.settings.json
        os.environ.update(
            {
                "AzureWebJobsStorage": (
                    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
                    f"BlobEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT_NAME};QueueEndpoint={azurite.queue_endpoint};"
                ),
                "LEADPIER_USERNAME": "bench",
                "LEADPIER_PASSWORD": "bench",
                "LE_API_URL": "http://127.0.0.1:9/le",
            }
        )
        proxy.set_rate(1.0, kinds=("stall",))
        print(f"{'route':<16}{'status':>8}{'seconds':>10}")
        routes: dict[str, Callable[[], ApiResponse]] = {
            "/status": api.status,
            "/runs": lambda: api.runs({}, None),
            "/logs": lambda: api.logs({"lines": "5"}),
            "/logs/download": lambda: api.logs_download({}),
            "/health": health,
        }
        for name, call in routes.items():
            started = time.monotonic()
            answer = call()
            print(f"{name:<16}{answer.status_code:>8}{time.monotonic() - started:>10.1f}")
        services.reset()


if __name__ == "__main__":
    main()
