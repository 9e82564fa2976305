"""``[core] hostname_callable`` of the Celery end-to-end test's workers (copied to ``$AIRFLOW_HOME/config``).

Two workers on one machine would record the same host name on every task instance; each reports its own
name instead (``ENLIVY_E2E_WORKER_NAME``), so the test can tell which worker ran which try.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("ENLIVY_E2E_WORKER_NAME") or socket.getfqdn()
