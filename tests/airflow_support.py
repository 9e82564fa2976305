"""Helpers for running real Airflow in tests (not a pytest plugin: imported explicitly)."""

from __future__ import annotations

import json
from typing import Any


def sync_dag_to_db(dag: Any) -> None:
    """Write a DAG defined in a test module to the metadata DB, as the dag-processor would.

    Airflow 3's ``dag.test()`` runs the *serialized* DAG it finds through the DAG bundles; a DAG built
    inside a test is in no bundle, so it is written under the default ``dags-folder`` bundle first.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """``dag.test(**test_kwargs)`` for a DAG defined in a test; returns the DagRun."""
    sync_dag_to_db(dag)
    return dag.test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """{task_id (with map index when mapped): state} of a finished DagRun."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis
        }


def xcom_result(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The return value a task pushed to XCom in a finished DagRun."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index)
            .filter(XComModel.key == "return_value")
            .one_or_none()
        )
        if row is None:
            return None
        # The Task SDK stores a task's return value as plain JSON, so the column already holds the Python
        # value. XComModel.deserialize_value would json.loads a str return ("20.10" -> 20.1); re-encoding
        # first keeps strings intact while XComDecoder still restores Airflow's special encodings.
        from airflow.utils.json import XComDecoder

        return json.loads(json.dumps(row.value), cls=XComDecoder)
