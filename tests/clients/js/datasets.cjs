// Datasets with the official Langfuse JS SDK (@langfuse/client 5.x): createDataset,
// createDatasetItem, dataset.get (items paged through dataset-items), a run item created
// with api.datasetRunItems.create, and the run read back with getDatasetRun.
// Run by tests/test_datasets_js.py with NODE_PATH=.venvs/langfuse-js/node_modules and
// LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_BASE_URL set. Prints one JSON line.
"use strict";

const { LangfuseClient } = require("@langfuse/client");

async function main() {
  const langfuse = new LangfuseClient();
  const created = await langfuse.api.datasets.create({
    name: "js-qa",
    description: "from js",
    metadata: { sdk: "js" },
  });
  const first = await langfuse.dataset.createItem({
    datasetName: "js-qa",
    input: { q: "ping" },
    expectedOutput: "pong",
    id: "js-item-1",
  });
  await langfuse.dataset.createItem({ datasetName: "js-qa", input: { q: "two" } });
  const dataset = await langfuse.dataset.get("js-qa", { fetchItemsPageSize: 1 });
  const runItem = await langfuse.api.datasetRunItems.create({
    runName: "js-run",
    datasetItemId: first.id,
    traceId: "0af7651916cd43dd8448eb211c80319c",
  });
  const run = await langfuse.api.datasets.getRun("js-qa", "js-run");
  let missing = null;
  try {
    await langfuse.api.datasets.get("no-such-dataset");
  } catch (err) {
    missing = err.statusCode ?? String(err);
  }
  console.log(
    JSON.stringify({
      datasetId: created.id,
      metadata: created.metadata,
      firstId: first.id,
      mediaReferences: first.mediaReferences,
      items: dataset.items.map((i) => i.id).sort(),
      expected: dataset.items.map((i) => i.expectedOutput).sort(),
      hasRunExperiment: typeof dataset.runExperiment === "function",
      runItemRunName: runItem.datasetRunName,
      runId: runItem.datasetRunId,
      runItems: run.datasetRunItems.map((i) => i.traceId),
      missing,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
