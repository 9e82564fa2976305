"""Helpers for running real Airflow in tests (not a pytest plugin: imported explicitly).

The one test module that knows which Airflow runs the suite: running a DAG, reading XCom and extra links,
the secrets masker, the trigger table's kwargs. Airflow 3 runs tasks through the Task SDK against serialized
DAGs; Airflow 2 (2.11, the lowest supported) runs the DAG object itself and keeps everything in its ORM.
Tests that only make sense on one of them carry ``@pytest.mark.airflow3_only(reason=...)`` (tests/conftest.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

AIRFLOW_3 = AIRFLOW_V_3_0_PLUS

#: Reasons of ``airflow3_only`` markers shared by several modules.
NO_LOGICAL_DATE = (
    "runs without a logical date (airflow dags trigger, the REST API) exist since Airflow 3; on Airflow 2 "
    "every run has one, and those runs are tested as manual runs with a logical date"
)
REST_API_V2 = (
    "Airflow 3's REST API (api/v2, FastAPI) answers here; Airflow 2's api/v1 is a Flask app with its own auth"
)


def sync_dag_to_db(dag: Any) -> None:
    """Write a DAG defined in a test module to the metadata DB, as the dag-processor would.

    Airflow 3's ``dag.test()`` runs the *serialized* DAG it finds through the DAG bundles; a DAG built
    inside a test is in no bundle, so it is written under the default ``dags-folder`` bundle first. Airflow 2
    runs the DAG object, but its webserver (extra links) and CLI read the serialized DAG, written here too.
    """
    from airflow.utils.session import create_session

    if not AIRFLOW_3:
        from airflow.models.serialized_dag import SerializedDagModel

        with create_session() as session:
            dag.sync_to_db(session=session)
            SerializedDagModel.write_dag(dag, session=session)
        return

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """``dag.test(**test_kwargs)`` for a DAG defined in a test; returns the DagRun.

    ``logical_date`` is Airflow 3's name; Airflow 2 calls it ``execution_date``.
    """
    sync_dag_to_db(dag)
    if not AIRFLOW_3 and "logical_date" in test_kwargs:
        test_kwargs["execution_date"] = test_kwargs.pop("logical_date")
    return dag.test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """{task_id (with map index when mapped): state} of a finished DagRun."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): _state(ti.state)
            for ti in tis
        }


def _state(state: Any) -> str:
    return str(getattr(state, "value", state))


def xcom_result(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The return value a task pushed to XCom in a finished DagRun."""
    return xcom_value(dag_run, task_id, "return_value", map_index, missing_ok=True)


def xcom_value(dag_run: Any, task_id: str, key: str, map_index: int = -1, *, missing_ok: bool = False) -> Any:
    """Any XCom of a finished run (``bulk_result``...); a missing one fails unless ``missing_ok``."""
    from airflow.utils.session import create_session

    if not AIRFLOW_3:
        from airflow.models.xcom import XCom

        with create_session() as session:
            query = session.query(XCom).filter_by(
                dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index, key=key
            )
            row = query.one_or_none() if missing_ok else query.one()
            return None if row is None else row.value  # deserialized on load (BaseXCom.init_on_load)

    from airflow.models.xcom import XComModel

    with create_session() as session:
        query = session.query(XComModel).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index, key=key
        )
        row = query.one_or_none() if missing_ok else query.one()
        if row is None:
            return None
        # The Task SDK stores a task's value as plain JSON, so the column already holds the Python value.
        # XComModel.deserialize_value would json.loads a str return ("20.10" -> 20.1); re-encoding first
        # keeps strings intact while XComDecoder still restores Airflow's special encodings.
        from airflow.utils.json import XComDecoder

        return json.loads(json.dumps(row.value), cls=XComDecoder)


def all_xcoms(dag_run: Any) -> list[tuple[str, str, Any]]:
    """(task_id, key, value) of every XCom of the run, values as the metadata DB holds them."""
    from airflow.utils.session import create_session

    if AIRFLOW_3:
        from airflow.models.xcom import XComModel as model
    else:
        from airflow.models.xcom import XCom as model
    with create_session() as session:
        rows = session.query(model).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return [(row.task_id, row.key, row.value) for row in rows]


def extra_link(dag_run: Any, task_id: str, link: Any) -> str | None:
    """The URL of a task's extra link (an operator link instance), as the UI gets it.

    Airflow 3 computes every link when the task ends and keeps it as an XCom (``_link_<class name>``) that
    the API server reads; Airflow 2's webserver asks the serialized operator's link when the page is drawn.
    """
    if AIRFLOW_3:
        url: str | None = xcom_value(dag_run, task_id, f"_link_{type(link).__name__}", missing_ok=True)
        return url

    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        serialized = SerializedDagModel.get_dag(dag_run.dag_id, session=session)
        assert serialized is not None, dag_run.dag_id
        ti = dag_run.get_task_instance(task_id, session=session)
        url = serialized.get_task(task_id).get_extra_links(ti, link.name)
        return url


def forked_worker_setup() -> None:
    """Make a process forked from the test session able to run ``dag.test()`` itself."""
    if AIRFLOW_3:
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        # dag.test() talks to an in-process Execution API whose event loop runs in a thread of the process
        # that created it; a forked child has no such thread, so it must build its own.
        in_process_api_server.cache_clear()
    # Airflow (2 and 3) resets the DB engine after a fork itself.


def stored_trigger_kwargs(kwargs: dict[str, Any]) -> Any:
    """A trigger's kwargs after the trip through the trigger table, as the triggerer reads them back."""
    if AIRFLOW_3:
        from airflow.sdk.serde import deserialize, serialize

        return deserialize(json.loads(json.dumps(serialize(kwargs))))
    from airflow.serialization.serialized_objects import BaseSerialization

    return BaseSerialization.deserialize(json.loads(json.dumps(BaseSerialization.serialize(kwargs))))


def fresh_secrets_masker() -> Any:
    """Empty Airflow's secrets masker, so a test sees what *it* registered; returns its ``redact``."""
    if AIRFLOW_3:
        from airflow.sdk._shared.secrets_masker import _secrets_masker, redact

        _secrets_masker().reset_masker()
        return redact
    from airflow.utils.log.secrets_masker import _secrets_masker, redact

    masker = _secrets_masker()
    masker.patterns = set()
    masker.replacer = None
    return redact


def connection_form(conn_type: str) -> dict[str, Any]:
    """The connection form Airflow's UI draws for ``conn_type``, read from the ProvidersManager as the UI
    reads it: ``hook`` (class name), ``fields`` ({extra name: {label, required, description}}) and
    ``behaviour`` (hidden_fields, relabeling, placeholders).

    Airflow 3.2+ takes it from ``conn-fields``/``ui-field-behaviour`` in the provider info (JSON schemas);
    Airflow 2 from the hook's ``get_connection_form_widgets``/``get_ui_field_behaviour`` (WTForms fields).
    """
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    prefix = f"extra__{conn_type}__"
    widgets = {
        key[len(prefix) :]: info.field
        for key, info in manager.connection_form_widgets.items()
        if key.startswith(prefix)
    }
    fields: dict[str, dict[str, Any]] = {}
    if AIRFLOW_3:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hook = ProvidersManagerTaskRuntime().hooks[conn_type]
        for name, field in widgets.items():
            kinds = field["schema"]["type"]
            fields[name] = {
                "label": field["schema"]["title"],
                "required": "null" not in kinds,
                "description": field["description"],
            }
    else:
        from wtforms.validators import InputRequired

        hook = manager.hooks[conn_type]
        for name, field in widgets.items():  # a wtforms UnboundField
            validators = field.kwargs.get("validators") or []
            fields[name] = {
                "label": str(field.args[0]),
                "required": any(isinstance(v, InputRequired) for v in validators),
                "description": field.kwargs.get("description"),
            }
    assert hook is not None, conn_type
    behaviour = {key.replace("-", "_"): value for key, value in manager.field_behaviours[conn_type].items()}
    return {"hook": hook.hook_class_name, "fields": fields, "behaviour": behaviour}


def deferral_timeout_kwargs() -> dict[str, Any]:
    """The ``next_kwargs`` this Airflow's scheduler gives a deferred task whose deferral timed out (with
    ``next_method="__fail__"``): Airflow 3 says "Trigger timeout", Airflow 2 "Trigger/execution timeout"."""
    if AIRFLOW_3:
        from airflow.models.trigger import TriggerFailureReason

        return {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    return {"error": "Trigger/execution timeout"}  # a literal in SchedulerJobRunner.check_trigger_timeouts


def attach_filesystem(protocol: str, fs: Any) -> None:
    """Register an fsspec filesystem for ``ObjectStoragePath`` (``airflow.sdk.io`` on 3, ``airflow.io.store``
    on 2)."""
    if AIRFLOW_3:
        from airflow.sdk.io import attach
    else:
        from airflow.io.store import attach
    attach(protocol, fs=fs)


def task_log(capfd: Any, caplog: Any) -> str:
    """Everything the tasks of a ``dag.test()`` logged so far: Airflow 3's Task SDK writes the task log to the
    process's stdout (structlog), Airflow 2 logs through the ``logging`` module, which pytest's ``caplog`` holds."""
    return "\n".join([*capfd.readouterr(), caplog.text])


def scheduler_components(api_port: int, log_ports: tuple[int, int]) -> tuple[list[str], dict[str, str]]:
    """The ``airflow`` commands of a real deployment on SQLite, and the settings they need beyond the common
    ones (tests/e2e).

    Airflow 3: api-server (task processes talk to its Execution API), scheduler, dag-processor, triggerer,
    with the LocalExecutor. Airflow 2: scheduler (which parses the DAG folder itself) and triggerer, with the
    SequentialExecutor, the only one Airflow 2 runs on SQLite; task processes use the metadata DB directly.
    """
    import os
    import sys

    common = {
        # The log servers of the task runner and the triggerer, off the default ports other runs may hold.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports[1]),
    }
    if not AIRFLOW_3:
        return ["scheduler", "triggerer"], {
            **common,
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            # The executor starts each task as an `airflow tasks run` command: this virtualenv's.
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        }
    return ["api-server", "scheduler", "dag-processor", "triggerer"], {
        **common,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret-not-for-production-" + "x" * 64,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # On a loaded machine the api-server has answered a task's state PATCH after 11.7 s: the default
        # client timeout (5 s) failed the task and its retry delay (minutes) outlived the deadline.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
    }


@dataclass(frozen=True)
class AssetTables:
    """The metadata DB's asset tables: Airflow 3's ``Asset*`` models, Airflow 2's ``Dataset*`` twins."""

    model: Any  # the assets (datasets)
    event: Any  # their events
    queue: Any  # the scheduler's queue of runs to create (``*DagRunQueue``)
    reference: Any  # which DAG is scheduled on which asset (``DagSchedule*Reference``)
    event_asset_id: Any  # the event's column pointing at its asset
    queue_asset_id: Any  # the queue row's column pointing at its asset


def asset_tables() -> AssetTables:
    if AIRFLOW_3:
        from airflow.models import asset

        return AssetTables(
            asset.AssetModel,
            asset.AssetEvent,
            asset.AssetDagRunQueue,
            asset.DagScheduleAssetReference,
            asset.AssetEvent.asset_id,
            asset.AssetDagRunQueue.asset_id,
        )
    from airflow.models import dataset

    return AssetTables(
        dataset.DatasetModel,
        dataset.DatasetEvent,
        dataset.DatasetDagRunQueue,
        dataset.DagScheduleDatasetReference,
        dataset.DatasetEvent.dataset_id,
        dataset.DatasetDagRunQueue.dataset_id,
    )


def asset_events(uri_like: str) -> list[tuple[str, dict[str, Any]]]:
    """(URI, extra) of every asset event (dataset event on Airflow 2) recorded on an asset whose URI matches
    the SQL ``LIKE`` pattern ``uri_like``, oldest first, read from the metadata DB."""
    from airflow.utils.session import create_session

    tables = asset_tables()
    Model, Event = tables.model, tables.event
    with create_session() as session:
        rows = (
            session.query(Model.uri, Event.extra)
            .join(Model, tables.event_asset_id == Model.id)
            .filter(Model.uri.like(uri_like))
            .order_by(Event.id)
            .all()
        )
    return [(str(uri), dict(extra or {})) for uri, extra in rows]
