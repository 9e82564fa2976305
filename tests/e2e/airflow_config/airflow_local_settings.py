"""Cluster policy of the Celery end-to-end test's Airflow (copied to its ``$AIRFLOW_HOME/config``).

The billing DAG waits 5 minutes before a retry, as it should in production; the test retries after 5
seconds instead, so the retry of a task whose worker was killed happens within the test's deadline.
A policy changes the parsed DAG without touching the shipped file.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

TEST_RETRY_DELAY = timedelta(seconds=5)


def task_policy(task: Any) -> None:
    task.retry_delay = TEST_RETRY_DELAY
