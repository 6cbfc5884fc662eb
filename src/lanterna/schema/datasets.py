"""The fields of datasets, dataset items and dataset run items (contract 4.4): their
limits, choices and the body keys each write accepts. Stored in their own tables
(``store/datasets.py``), not through the event field tables."""

from __future__ import annotations

#: ``DatasetItem.status``: new items are ACTIVE; ARCHIVED items stay readable by id but
#: leave the dataset's item list (and so the experiments the SDKs run over it).
ITEM_STATUSES = ("ACTIVE", "ARCHIVED")
#: Dataset and run names, and client-chosen item ids (Langfuse: at most 255).
MAX_NAME = 255
MAX_ITEM_ID = 255
#: Trace and observation ids a run item links (as ingestion takes them).
MAX_LINKED_ID = 800
#: The keys ``POST /api/public/dataset-run-items`` accepts: any other is a 400.
RUN_ITEM_KEYS = frozenset(
    {
        "runName",
        "runDescription",
        "metadata",
        "datasetItemId",
        "traceId",
        "observationId",
        "datasetVersion",
        "createdAt",
    }
)
#: The keys a dataset write reads (the v2 and legacy v1 routes).
DATASET_KEYS = ("name", "description", "metadata", "inputSchema", "expectedOutputSchema")
#: The keys an item write reads.
ITEM_KEYS = (
    "datasetName",
    "id",
    "input",
    "expectedOutput",
    "metadata",
    "sourceTraceId",
    "sourceObservationId",
    "status",
)
