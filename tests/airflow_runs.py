"""DAG runs shaped the way Airflow's own entry points create them, executed in-process against the test DB.

``dag.test()`` only makes *manual* runs. A scheduled run, a backfill run and a run triggered from the CLI or
REST API have other shapes (run type, logical date = interval start, or no logical date and no data
interval at all), and the operators see those shapes in their task context. Here:

* :func:`create_scheduled_run` creates the run with the same calls as the scheduler
  (``SchedulerJobRunner._create_dag_runs``: the timetable's ``DagRunInfo``, ``generate_run_id``,
  ``create_dagrun(run_type=SCHEDULED, ...)``);
* :func:`trigger_run` creates a run without a logical date, as ``POST /api/v2/dags/{dag_id}/dagRuns`` and
  ``airflow dags trigger`` do (``airflow.api.common.trigger_dag``), with a chosen trigger time;
* :func:`airflow_cli` runs a real ``airflow ...`` command (``airflow dags trigger``, ``airflow backfill
  create``) in a subprocess on the same metadata DB: both write their runs straight to the DB;
* :func:`clear_runs` clears a DAG's task instances as ``airflow tasks clear`` does (a re-run of a run);
* :func:`execute_run` then plays the scheduler's part for a run that exists: the loop of ``dag.test()``
  (``update_state``, then each schedulable task in this process through the Task SDK). It stops with an
  AssertionError instead of waiting when a task waits for a delayed retry, so "no task retried" is
  checked without sleeping through a retry delay.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import datetime
from typing import Any

from airflow_support import AIRFLOW_3, asset_tables, sync_dag_to_db

CLI_TIMEOUT_S = 180


def airflow_cli(*args: str) -> str:
    """Run ``airflow <args>`` on this test session's metadata DB (its AIRFLOW_* environment); its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0, f"airflow {' '.join(args)}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def create_scheduled_run(dag: Any, interval_start: datetime) -> str:
    """The scheduled run whose data interval starts at ``interval_start``, created as the scheduler does;
    returns its run_id."""
    sync_dag_to_db(dag)
    if not AIRFLOW_3:
        return _create_scheduled_run_airflow2(dag, interval_start)
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        serdag = DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
        assert serdag is not None
        info = next(iter(serdag.iter_dagrun_infos_between(interval_start, interval_start)))
        assert info.data_interval is not None and info.data_interval.start == interval_start, info
        dag_run = serdag.create_dagrun(
            run_id=serdag.timetable.generate_run_id(
                run_type=DagRunType.SCHEDULED,
                run_after=info.run_after,
                data_interval=info.data_interval,
                partition_key=info.partition_key,
            ),
            logical_date=info.logical_date,
            data_interval=info.data_interval,
            run_after=info.run_after,
            run_type=DagRunType.SCHEDULED,
            triggered_by=DagRunTriggeredByType.TIMETABLE,
            state=DagRunState.QUEUED,
            session=session,
            partition_key=info.partition_key,
            partition_date=info.partition_date,
        )
        return str(dag_run.run_id)


def _create_scheduled_run_airflow2(dag: Any, interval_start: datetime) -> str:
    """Airflow 2's scheduler (``SchedulerJobRunner._create_dag_runs``): logical date = interval start."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    info = next(iter(dag.iter_dagrun_infos_between(interval_start, interval_start)))
    assert info.data_interval is not None and info.data_interval.start == interval_start, info
    with create_session() as session:
        dag_run = dag.create_dagrun(
            run_id=DagRun.generate_run_id(DagRunType.SCHEDULED, info.logical_date),
            execution_date=info.logical_date,
            data_interval=info.data_interval,
            run_type=DagRunType.SCHEDULED,
            external_trigger=False,
            state=DagRunState.QUEUED,
            session=session,
        )
        return str(dag_run.run_id)


def trigger_run(dag: Any, *, run_after: datetime | None = None, conf: dict[str, Any] | None = None) -> str:
    """A manual run without a logical date (hence without a data interval), triggered at ``run_after``
    (default: now) through the function behind the CLI's and the REST API's trigger; returns its run_id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    sync_dag_to_db(dag)
    dag_run = trigger_dag(
        dag.dag_id, triggered_by=DagRunTriggeredByType.REST_API, run_after=run_after, conf=conf
    )
    assert dag_run is not None and dag_run.logical_date is None and dag_run.data_interval_start is None
    return str(dag_run.run_id)


def run_ids(dag_id: str, run_type: str | None = None) -> list[str]:
    """The DAG's runs (of one type, if given), oldest logical date / trigger time first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        query = session.query(DagRun).filter(DagRun.dag_id == dag_id)
        if run_type is not None:
            query = query.filter(DagRun.run_type == run_type)
        when = DagRun.run_after if AIRFLOW_3 else DagRun.execution_date  # Airflow 2 has no run_after
        return [dr.run_id for dr in query.order_by(when, DagRun.id)]


def delete_runs(dag_id: str) -> None:
    """Forget the DAG's runs and backfills (each test starts from none, as a fresh deployment would)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    if not AIRFLOW_3:
        with create_session() as session:
            session.query(DagRun).filter(DagRun.dag_id == dag_id).delete()
        return
    from airflow.models.backfill import Backfill, BackfillDagRun  # backfills have rows since Airflow 3

    with create_session() as session:
        backfills = [b.id for b in session.query(Backfill).filter(Backfill.dag_id == dag_id)]
        session.query(BackfillDagRun).filter(BackfillDagRun.backfill_id.in_(backfills)).delete()
        session.query(DagRun).filter(DagRun.dag_id == dag_id).delete()
        session.query(Backfill).filter(Backfill.dag_id == dag_id).delete()


def clear_runs(dag_id: str) -> int:
    """Clear every task instance of the DAG's runs, as ``airflow tasks clear <dag_id> --yes`` does (the same
    calls, in this process: the DAG from the DB, ``SerializedDAG.clear_dags``); the runs go back to queued,
    for :func:`execute_run` to run again. Returns how many task instances were cleared."""
    from airflow.serialization.definitions.dag import SerializedDAG
    from airflow.utils.cli import get_db_dag

    return int(SerializedDAG.clear_dags([get_db_dag(bundle_names=None, dag_id=dag_id)]))


def execute_run(dag: Any, run_id: str) -> Any:
    """Run every task of an existing run in this process, as ``dag.test()`` does; returns the DagRun."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.providers.common.compat.sdk import timezone
    from airflow.utils.state import DagRunState, TaskInstanceState

    session = settings.Session()
    dag_run = session.query(DagRun).filter_by(dag_id=dag.dag_id, run_id=run_id).one()
    if AIRFLOW_3:
        from airflow.models.dagbag import DBDagBag
        from airflow.sdk.definitions.dag import _run_task

        dag_run.dag = DBDagBag().get_dag_for_run(dag_run, session=session)
    else:
        from airflow.models.dag import _run_task as _run_task_2

        dag_run.dag = dag

        def _run_task(*, ti: Any, task: Any, run_triggerer: bool) -> None:
            # As Airflow 2's dag.test(): a failing task is logged, its state tells the rest.
            ti.task = task
            with contextlib.suppress(Exception):
                _run_task_2(ti=ti, inline_trigger=run_triggerer, session=session)

    dag_run.state = DagRunState.RUNNING
    dag_run.start_date = timezone.utcnow()
    session.commit()
    before: dict[str, str] = {}
    while dag_run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = dag_run.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        tis = dag_run.get_task_instances(session=session)
        scheduled = [ti for ti in tis if ti.state == TaskInstanceState.SCHEDULED]
        states = {ti.task_id: str(ti.state) for ti in tis}
        if dag_run.state == DagRunState.RUNNING and not scheduled and states == before:
            # Nothing to run and nothing changed since the last round: a task waits for a delayed retry.
            raise AssertionError(f"run {run_id} cannot go on (a task waits for a retry?): {states}")
        before = states
        for ti in scheduled:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    session.close()
    return dag_run


def try_numbers(dag_run: Any) -> dict[str, int]:
    """{task_id: try_number} of the run's task instances that ran (1 everywhere: nothing was retried)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        return {ti.task_id: ti.try_number for ti in tis if ti.try_number}


def backdate_asset_events(source_run_id: str, target_dag_id: str, moment: datetime) -> int:
    """Move the asset events a run recorded, and the scheduler's queue entries of ``target_dag_id``, to
    ``moment``: as if the run had finished then (a test cannot wait for a month end). The target's asset
    references (if any) move to 2000: Airflow 3 hands a DAG without catchup no event older than the day it
    started scheduling on an asset. (A DAG scheduled only on an alias has none: that floor does not apply to
    it.) Returns how many events moved."""
    from airflow.utils.session import create_session

    tables = asset_tables()
    Event, Queue, Reference = tables.event, tables.queue, tables.reference
    with create_session() as session:
        moved = (
            session.query(Event).filter(Event.source_run_id == source_run_id).update({"timestamp": moment})
        )
        session.query(Queue).filter(Queue.target_dag_id == target_dag_id).update({"created_at": moment})
        session.query(Reference).filter(Reference.dag_id == target_dag_id).update(
            {"created_at": datetime(2000, 1, 1, tzinfo=moment.tzinfo)}
        )
    return int(moved)


def forget_asset_events(uri_like: str) -> None:
    """Delete the asset events of the assets whose URI matches the SQL ``LIKE`` pattern (each test starts
    from none: an event an earlier test left would be handed to this test's runs). ORM deletes, so the alias
    and consumed-by-run association rows go with them."""
    from airflow.utils.session import create_session

    tables = asset_tables()
    with create_session() as session:
        ids = [
            model_id for (model_id,) in session.query(tables.model.id).filter(tables.model.uri.like(uri_like))
        ]
        for event in session.query(tables.event).filter(tables.event_asset_id.in_(ids)):
            session.delete(event)


def create_asset_triggered_runs(dag_id: str) -> list[str]:
    """What the scheduler's loop does for ``dag_id`` if its asset condition is met
    (``SchedulerJobRunner._create_dagruns_for_dags``, asset-triggered part only: ``DagModel.dags_needing_dagruns``
    evaluates the condition, aliases included, then ``_create_dag_runs_asset_triggered`` creates the run with
    the events it consumes). Returns the run ids it created (none if the condition is not met)."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    before = set(run_ids(dag_id))
    runner = SchedulerJobRunner(job=Job())
    with create_session() as session:
        query, triggered = DagModel.dags_needing_dagruns(session)
        due = [model for model in query.all() if model.dag_id == dag_id and dag_id in triggered]
        if due and AIRFLOW_3:
            runner._create_dag_runs_asset_triggered(dag_models=due, session=session)
        elif due:
            runner._create_dag_runs_dataset_triggered(due, {dag_id: triggered[dag_id]}, session)
    return [run_id for run_id in run_ids(dag_id) if run_id not in before]


def set_paused(dag_id: str, paused: bool) -> None:
    """Pause or unpause a DAG, as the UI's toggle does (the scheduler queues no asset run for a paused DAG)."""
    from airflow.models import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": paused})
