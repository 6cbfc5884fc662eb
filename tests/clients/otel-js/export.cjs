// The OpenTelemetry JS SDK records an application's spans once, then exports the same
// spans twice: with @opentelemetry/exporter-trace-otlp-grpc (gzip, as collectors send
// by default; the key pair in the `authorization` metadata) and with
// @opentelemetry/exporter-trace-otlp-proto (OTLP/HTTP protobuf, gzip), each to its own
// project, so tests/otel/test_otel_grpc_js.py can compare what the read API answers.
//
// Run with NODE_PATH=.venvs/otel-js/node_modules, the scenario as the argument ("rag" or
// "vision") and LANTERNA_GRPC_URL / LANTERNA_GRPC_AUTH / LANTERNA_HTTP_URL /
// LANTERNA_HTTP_AUTH (and LANTERNA_IMAGE_URI for "vision") set. Prints one JSON line: the
// recorded spans (name and ids) and each exporter's result.
"use strict";

const { context, trace, SpanKind, SpanStatusCode } = require("@opentelemetry/api");
const {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} = require("@opentelemetry/sdk-trace-base");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { OTLPTraceExporter: GrpcExporter } = require("@opentelemetry/exporter-trace-otlp-grpc");
const { OTLPTraceExporter: HttpExporter } = require("@opentelemetry/exporter-trace-otlp-proto");
const { Metadata } = require("@grpc/grpc-js");

// A question answered by a chat model (GenAI semantic conventions) after a tool call that
// failed; the root ends with an error status.
function ragApp(tracer) {
  const root = tracer.startSpan("answer-question", {
    attributes: { "session.id": "chat-9", "user.id": "alice" },
  });
  const inRoot = trace.setSpan(context.active(), root);
  const tool = tracer.startSpan(
    "execute_tool web-search",
    {
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "web-search",
      },
    },
    inRoot,
  );
  tool.recordException(new Error("search index offline"));
  tool.setStatus({ code: SpanStatusCode.ERROR, message: "search index offline" });
  tool.end();
  const chat = tracer.startSpan(
    "chat claude-3-5-sonnet",
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 200,
        "gen_ai.usage.output_tokens": 40,
      },
    },
    inRoot,
  );
  chat.addEvent("gen_ai.system.message", { content: "Answer briefly." });
  chat.addEvent("gen_ai.user.message", { content: "What is OTLP?" });
  chat.addEvent("gen_ai.choice", {
    index: 0,
    finish_reason: "stop",
    message: '{"content": "A protocol."}',
  });
  chat.end();
  root.setStatus({ code: SpanStatusCode.ERROR, message: "downstream failed" });
  root.end();
}

// A vision call whose input carries the image as a data URI.
function visionApp(tracer) {
  const message = [
    {
      role: "user",
      content: [
        { type: "text", text: "What is in the picture?" },
        { type: "image_url", image_url: { url: process.env.LANTERNA_IMAGE_URI } },
      ],
    },
  ];
  const span = tracer.startSpan("vision call", {
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "gpt-4o",
      "langfuse.observation.input": JSON.stringify(message),
      "langfuse.observation.output": "a blue square",
    },
  });
  span.end();
}

function exportTo(exporter, spans) {
  return new Promise((resolve) => {
    exporter.export(spans, (result) =>
      resolve({ code: result.code, error: result.error ? String(result.error) : null }),
    );
  });
}

async function main() {
  const apps = { rag: ragApp, vision: visionApp };
  const app = apps[process.argv[2]];
  if (!app) throw new Error(`unknown scenario ${process.argv[2]}`);
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": "rag-js",
      "deployment.environment.name": "production",
    }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  app(provider.getTracer("rag-app-js", "2.0.0"));
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();

  const metadata = new Metadata();
  metadata.set("authorization", process.env.LANTERNA_GRPC_AUTH);
  const grpc = new GrpcExporter({
    url: process.env.LANTERNA_GRPC_URL,
    metadata,
    compression: "gzip",
    timeoutMillis: 10000,
  });
  const http = new HttpExporter({
    url: process.env.LANTERNA_HTTP_URL,
    headers: { Authorization: process.env.LANTERNA_HTTP_AUTH },
    compression: "gzip",
    timeoutMillis: 10000,
  });
  const results = {
    grpc: await exportTo(grpc, spans),
    http: await exportTo(http, spans),
  };
  await Promise.all([grpc.shutdown(), http.shutdown(), provider.shutdown()]);
  const recorded = spans.map((s) => ({
    name: s.name,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : null,
  }));
  console.log(JSON.stringify({ spans: recorded, results }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
