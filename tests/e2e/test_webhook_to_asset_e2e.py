"""The webhook example of docs/events.md, run for real: emulator → signed webhook → the example service
(``scripts/enlivy_webhook_receiver.py``, its own process) → Airflow's REST API (a real ``airflow api-server
--apps core`` process, logged in with a Simple Auth Manager user) → an asset event that queues a run of the
DAG scheduled on the asset.

The api-server uses the test session's metadata database (already migrated), where the consumer DAG is
written as the dag-processor would write it; the scheduler is not started: the queued asset event is what it
would act on. Waiting for the two servers to come up polls their health URLs under a deadline; everything
after that is driven by answers (the emulator's delivery wait), never by sleeps.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow_support import REST_API_V2, sync_dag_to_db
from process_support import process_groups, wait_for

from enlivy_provider.testing import EmulatorHandle, free_port, invoice_payload
from enlivy_provider.webhooks import SIGNATURE_HEADER, sign

REPO = Path(__file__).resolve().parents[2]
RECEIVER = REPO / "scripts" / "enlivy_webhook_receiver.py"
ASSET_URI = "enlivy://api.enlivy.com/organizations/org_acme/invoices?status=paid"
CONSUMER_DAG_ID = "enlivy_paid_invoice_consumer"
USER, PASSWORD = "webhooks", "webhook-test-password"
STARTUP_DEADLINE_S = 180  # an api-server on a loaded 2-core machine


@contextlib.contextmanager
def _process(
    name: str, command: list[str], env: dict[str, str], logs: Path, health_url: str
) -> Iterator[Path]:
    """Run ``command`` as ``name`` (its own process group, stopped afterwards) once ``health_url`` answers
    200; yields its log file."""
    with process_groups(logs) as processes:
        processes.start(name, command, env)

        def healthy() -> bool:
            with contextlib.suppress(requests.RequestException):
                return processes.running(name) and requests.get(health_url, timeout=2).status_code == 200
            return False

        wait_for(
            f"{name} to answer {health_url}", healthy, timeout_s=STARTUP_DEADLINE_S, details=processes.tail
        )
        yield processes.logs[name]


class AirflowApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        token = requests.post(
            f"{base_url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30
        )
        assert token.status_code == 201, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = requests.get(self.base_url + path, params=params, headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        answer = requests.patch(self.base_url + path, json=body, headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


# The example service posts asset events to api/v2 (Airflow 2.11's api/v1 has a datasets/events endpoint of its
# own, which the service does not speak).
pytestmark = pytest.mark.airflow3_only(reason=REST_API_V2)


@pytest.fixture(scope="module")
def airflow_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApi]:
    """A real api-server (REST API only) over the session's metadata DB, with the consumer DAG in it; one for
    the module (it takes a while to start)."""
    tmp_path = tmp_path_factory.mktemp("airflow-api")
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Asset

    # The DAG docs/events.md shows: it runs when the webhook service marks the asset.
    with DAG(CONSUMER_DAG_ID, schedule=[Asset(name="enlivy_paid_invoices", uri=ASSET_URI)]) as dag:
        EmptyOperator(task_id="handle_paid_invoice")
    sync_dag_to_db(dag)

    passwords = tmp_path / "passwords.json"
    passwords.write_text(f'{{"{USER}": "{PASSWORD}"}}')
    port = free_port()
    env = {
        **os.environ,  # AIRFLOW_HOME and the session database, set by tests/conftest.py
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "webhook-e2e-secret-not-for-production-" + "x" * 64,
    }
    command = [sys.executable, "-m", "airflow", "api-server", "--apps", "core", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with _process("api-server", command, env, tmp_path, f"{base_url}/api/v2/version"):
        api = AirflowApi(base_url)
        api.patch(f"/api/v2/dags/{CONSUMER_DAG_ID}", {"is_paused": False})  # paused DAGs queue nothing
        yield api


@pytest.fixture
def receiver(
    tmp_path: Path, enlivy_emulator: EmulatorHandle, airflow_api: AirflowApi
) -> Iterator[dict[str, Any]]:
    """An event destination on the emulator, and the example service behind it (its own process)."""
    port = free_port()
    destination = enlivy_emulator.add_webhook_destination(
        f"http://127.0.0.1:{port}/enlivy/webhook", ["invoice.created", "invoice.paid"]
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "ENLIVY_WEBHOOK_SECRET": destination["signing_secret"],
        "AIRFLOW_API_URL": airflow_api.base_url,
        "AIRFLOW_USERNAME": USER,
        "AIRFLOW_PASSWORD": PASSWORD,
        "ENLIVY_ASSET_URI": ASSET_URI,
        "ENLIVY_EVENTS": "invoice.paid",
    }
    command = [sys.executable, str(RECEIVER), "--host", "127.0.0.1", "--port", str(port)]
    with _process("receiver", command, env, tmp_path, f"http://127.0.0.1:{port}/health") as log:
        yield {**destination, "url": f"http://127.0.0.1:{port}/enlivy/webhook", "log": log}


def _asset_events(api: AirflowApi) -> list[dict[str, Any]]:
    (asset,) = [
        a
        for a in api.get("/api/v2/assets", uri_pattern="enlivy://api.enlivy.com/organizations/org_acme")[
            "assets"
        ]
    ]
    return list(api.get("/api/v2/assets/events", asset_id=asset["id"])["asset_events"])


@pytest.mark.slow
def test_a_paid_invoice_webhook_becomes_one_asset_event_that_queues_the_consumer_dag(
    enlivy_emulator: EmulatorHandle, airflow_api: AirflowApi, receiver: dict[str, Any]
) -> None:
    earlier = _asset_events(airflow_api)  # the session's database may hold events of another test
    api_headers = {"Authorization": f"Bearer {enlivy_emulator.token}"}
    invoices = f"{enlivy_emulator.base_url}/organizations/{enlivy_emulator.org_id}/invoices"
    invoice = requests.post(invoices, json=invoice_payload(0), headers=api_headers, timeout=30).json()
    paid = requests.put(
        f"{invoices}/{invoice['id']}", json={"status": "paid"}, headers=api_headers, timeout=30
    )
    assert paid.status_code == 200, paid.text

    created, paid_delivery = enlivy_emulator.wait_for_deliveries()
    assert (created["event"], created["status"]) == ("invoice.created", "success")
    assert '"ignored": "invoice.created"' in created["response"]  # verified, acknowledged, not forwarded
    assert (paid_delivery["event"], paid_delivery["status"]) == ("invoice.paid", "success")

    (event,) = [e for e in _asset_events(airflow_api) if e not in earlier]
    assert event["uri"] == ASSET_URI and event["name"] == "enlivy_paid_invoices"
    assert event["extra"] == {
        "enlivy_event_id": paid_delivery["event_id"],
        "enlivy_event_type": "invoice.paid",
        "enlivy_event_created_at": paid_delivery["request_payload"]["created_at"],
        "organization_id": enlivy_emulator.org_id,
        "record_id": invoice["id"],
        "formatted_number": invoice["formatted_number"],
        "status": "paid",
        "total": "226.10",
        "currency": "EUR",
        "from_rest_api": True,  # Airflow marks events made through its REST API
    }
    assert f'"asset_event_id": {event["id"]}' in paid_delivery["response"]
    queued = airflow_api.get(f"/api/v2/dags/{CONSUMER_DAG_ID}/assets/queuedEvents")
    # What the scheduler turns into the consumer DAG's next run.
    assert [(q["dag_id"], q["asset_id"]) for q in queued["queued_events"]] == [
        (CONSUMER_DAG_ID, event["asset_id"])
    ]

    # Enlivy may deliver an event again: the same event id makes no second asset event.
    enlivy_emulator.redeliver(paid_delivery["id"])
    retry = enlivy_emulator.wait_for_deliveries()[-1]
    assert retry["status"] == "success" and '"duplicate": true' in retry["response"]
    assert len(_asset_events(airflow_api)) == len(earlier) + 1


@pytest.mark.slow
def test_forged_and_altered_deliveries_are_refused_and_make_no_asset_event(
    enlivy_emulator: EmulatorHandle, airflow_api: AirflowApi, receiver: dict[str, Any]
) -> None:
    body = (
        '{"id":"evt_forged","type":"invoice.paid","created_at":"2026-06-12T10:30:00Z",'
        '"data":{"id":"org_inv_x","status":"paid"},"organization_id":"' + enlivy_emulator.org_id + '"}'
    ).encode()
    genuine = sign(body, receiver["signing_secret"])
    earlier = _asset_events(airflow_api)
    attempts = {
        "no signature": (body, {}),
        "another secret": (body, {SIGNATURE_HEADER: sign(body, "whsec_someone_else")}),
        "altered body": (body.replace(b"org_inv_x", b"org_inv_y"), {SIGNATURE_HEADER: genuine}),
        "old scheme": (body, {SIGNATURE_HEADER: f"t=1781260200,v1={sign(b'1781260200.' + body, receiver['signing_secret'])}"}),
    }  # fmt: skip
    for name, (data, headers) in attempts.items():
        answer = requests.post(receiver["url"], data=data, headers=headers, timeout=30)
        assert (answer.status_code, answer.json()) == (400, {"error": "invalid signature"}), name
    assert _asset_events(airflow_api) == earlier
    log = receiver["log"].read_text()
    assert receiver["signing_secret"] not in log and "refused a delivery" in log
    # The genuine signature of the same bytes is accepted (so the refusals above were the signature's doing).
    accepted = requests.post(receiver["url"], data=body, headers={SIGNATURE_HEADER: genuine}, timeout=30)
    assert accepted.status_code == 200 and len(_asset_events(airflow_api)) == len(earlier) + 1
