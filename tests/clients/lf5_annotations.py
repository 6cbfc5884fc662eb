"""Comments, annotation queues and LLM connections with the official Langfuse 5.x SDK's
``api.comments``, ``api.annotation_queues`` and ``api.llm_connections`` clients.

Run under .venvs/langfuse5 by tests/test_annotations_api.py with the ids of a seeded
trace and score config. Prints one JSON line: what the SDK parsed from each answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langfuse import Langfuse
from langfuse.api.core.api_error import ApiError


def main() -> None:
    project_id, trace_id, config_id = sys.argv[1:4]
    api = Langfuse().api
    out: dict[str, Any] = {}

    made = api.comments.create(
        project_id=project_id, object_type="TRACE", object_id=trace_id, content="looks wrong"
    )
    listed = api.comments.get(object_type="TRACE", object_id=trace_id)
    one = api.comments.get_by_id(made.id)
    out["comment"] = {
        "listed": [(c.id, c.object_type, c.content) for c in listed.data],
        "total": listed.meta.total_items,
        "byId": [one.id, one.object_id, type(one.created_at).__name__, one.author_user_id],
    }
    try:
        api.comments.create(
            project_id=project_id, object_type="TRACE", object_id="missing", content="x"
        )
        out["missingStatus"] = None
    except ApiError as exc:
        out["missingStatus"] = exc.status_code

    queues = api.annotation_queues
    queue = queues.create_queue(name="review", score_config_ids=[config_id], description="d")
    item = queues.create_queue_item(queue.id, object_id=trace_id, object_type="TRACE")
    second = queues.create_queue_item(queue.id, object_id="other", object_type="TRACE")
    done = queues.update_queue_item(queue.id, item.id, status="COMPLETED")
    pending = queues.list_queue_items(queue.id, status="PENDING")
    assignment = queues.create_queue_assignment(queue.id, user_id="user-1")
    unassigned = queues.delete_queue_assignment(queue.id, user_id="user-1")
    deleted = queues.delete_queue_item(queue.id, second.id)
    out["queue"] = {
        "queue": [queue.name, queue.description, list(queue.score_config_ids)],
        "listed": [q.id for q in queues.list_queues().data] == [queue.id],
        "got": queues.get_queue(queue.id).id == queue.id,
        "item": [item.object_id, str(item.object_type), str(item.status), item.completed_at],
        "done": [str(done.status), done.completed_at is not None],
        "pending": [i.id for i in pending.data] == [second.id],
        "fetched": str(queues.get_queue_item(queue.id, item.id).status),
        "assignment": [assignment.user_id, assignment.queue_id == queue.id],
        "unassigned": unassigned.success,
        "deleted": deleted.success,
    }

    connection = api.llm_connections.upsert(
        provider="my-gateway",
        adapter="openai",
        secret_key="sk-gateway-key-5678",
        base_url="https://llm.example.com/v1",
    )
    out["connection"] = {
        "provider": connection.provider,
        "display": connection.display_secret_key,
        "listed": [c.provider for c in api.llm_connections.list().data],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
