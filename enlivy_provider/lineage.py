"""OpenLineage for the Enlivy operators: what a task read and wrote, reported when it completes.

With ``apache-airflow-providers-openlineage`` installed (the ``[openlineage]`` extra) and a transport
configured, Airflow's OpenLineage listener calls ``get_openlineage_facets_on_complete`` on every operator
that has it once the task succeeded. The operators note their datasets while they run
(:meth:`EnlivyLineageMixin.record_lineage`); this module turns the notes into OpenLineage datasets. Without
the extra nothing here imports OpenLineage: the imports are inside the method the listener calls.

Naming (the OpenLineage naming conventions, so lineage tools join the same dataset across jobs):

* an organization's invoices: namespace ``enlivy://<API host[:port]>``, name ``organizations/<org>/invoices``;
* a file: namespace ``file`` and the absolute path for local files (as Airflow's ``common.io`` provider names
  them), ``<scheme>://<bucket>`` and the key for object stores (``s3://bucket``, ``gs://bucket``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from enlivy_provider.hooks.enlivy import EnlivyHook

ENLIVY_SCHEME = "enlivy"


@dataclass(frozen=True)
class LineageDataset:
    """One dataset a task read or wrote; ``rows`` (written rows, outputs only) and ``columns`` (name → type,
    the file's schema) are reported when known."""

    namespace: str
    name: str
    rows: int | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageNote:
    inputs: tuple[LineageDataset, ...] = ()
    outputs: tuple[LineageDataset, ...] = ()


def invoices_dataset(hook: EnlivyHook, rows: int | None = None) -> LineageDataset:
    """The invoices of the hook's organization (its connection's API host and ``organization_id``)."""
    return LineageDataset(
        f"{ENLIVY_SCHEME}://{hook.api_host}", f"organizations/{hook.organization_id}/invoices", rows
    )


def file_dataset(
    url: str, rows: int | None = None, columns: Mapping[str, str] | None = None
) -> LineageDataset:
    """A file given as an ``ObjectStoragePath`` URL or a local path."""
    parsed = urlsplit(url)
    if parsed.scheme in ("", "file", "local"):
        return LineageDataset("file", parsed.path or url, rows, columns or {})
    bucket = parsed.hostname or ""  # drops an Airflow connection id given as user info (s3://conn@bucket)
    return LineageDataset(f"{parsed.scheme}://{bucket}", parsed.path.lstrip("/"), rows, columns or {})


def asset_uri(dataset: LineageDataset) -> str:
    """The Airflow asset URI of a file dataset, built from its OpenLineage name so an asset and a task's
    output dataset are the same thing to lineage tools: ``file:///abs/path`` (as ``common.io`` names file
    assets), ``s3://bucket/key``. The name never holds a connection id or credentials (see :func:`file_dataset`),
    and Airflow stores asset URIs in its database and shows them in the UI."""
    if dataset.namespace == "file":
        return f"file://{dataset.name}"
    return f"{dataset.namespace}/{dataset.name}"


class EnlivyLineageMixin:
    """``get_openlineage_facets_on_complete`` from the datasets the operator noted while it ran.

    List it *after* ``BaseOperator`` in the bases: Airflow's operator metaclass wraps the ``__init__`` of a
    class whose first base has another ``__init__``, and the wrapper's defaults (``inlets=None``) would then
    break ``.partial().expand()``.
    """

    _lineage_note: LineageNote | None = None

    def record_lineage(
        self, inputs: Iterable[LineageDataset] = (), outputs: Iterable[LineageDataset] = ()
    ) -> None:
        self._lineage_note = LineageNote(tuple(inputs), tuple(outputs))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The ``OperatorLineage`` of this run (empty when the task noted nothing, e.g. a dry run)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        note = self._lineage_note or LineageNote()
        return OperatorLineage(
            inputs=[_dataset(item, output=False) for item in note.inputs],
            outputs=[_dataset(item, output=True) for item in note.outputs],
        )


def _dataset(item: LineageDataset, *, output: bool) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if item.columns:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=name, type=kind) for name, kind in item.columns.items()]
        )
    if not output:
        return InputDataset(namespace=item.namespace, name=item.name, facets=facets)
    statistics: dict[str, Any] = {}
    if item.rows is not None:
        statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=item.rows)
    return OutputDataset(namespace=item.namespace, name=item.name, facets=facets, outputFacets=statistics)


def typed_columns(names: Sequence[str], types: Mapping[str, str], default: str = "string") -> dict[str, str]:
    """{column: type} in column order, ``default`` for the columns ``types`` does not name."""
    return {name: types.get(name, default) for name in names}
