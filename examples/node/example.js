// A grpc-js client of Plansmith, loading the repository's protos at run time.
//
//   cd examples/node && npm ci
//   GOOGLE_PROTOS_DIR=... node example.js [HOST:PORT] [RUN_ID]
//
// GOOGLE_PROTOS_DIR is a folder holding google/rpc/status.proto and
// google/rpc/error_details.proto, used to decode error details (docs/other-languages.md
// says where to get them); without it errors print their code and message only.
// RUN_ID prefixes the request ids: running the example again with the same RUN_ID
// writes nothing new.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const target = process.argv[2] || "localhost:50051";
const runId = process.argv[3] || "node-example";

// keepCase: false gives the lowerCamelCase names of the protos' JSON mapping
// (projectId, requestId); snake_case keys would be dropped without an error.
// enums: String returns enum names (TASK_STATUS_TODO) instead of numbers;
// longs: String returns int64 fields as strings.
const definition = protoLoader.loadSync(
  ["plansmith/v1/plan_service.proto", "plansmith/v1/planning_service.proto"],
  { includeDirs: [PROTOS], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true },
);
const v1 = grpc.loadPackageDefinition(definition).plansmith.v1;
const credentials = grpc.credentials.createInsecure();
const plans = new v1.PlanService(target, credentials);
const planning = new v1.PlanningService(target, credentials);

function call(client, method, request) {
  const deadline = new Date(Date.now() + 15000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// A google.protobuf.Struct from a plain object. proto-loader drops a plain object given
// for a Struct field without an error: every value must be wrapped in its kind.
function toValue(v) {
  if (v === null) return { nullValue: "NULL_VALUE" };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  switch (typeof v) {
    case "string": return { stringValue: v };
    case "number": return { numberValue: v };
    case "boolean": return { boolValue: v };
    case "object": return { structValue: toStruct(v) };
    default: throw new TypeError(`no Struct value for ${typeof v}`);
  }
}
function toStruct(obj) {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toValue(v)])) };
}

// google.rpc.Status from the grpc-status-details-bin trailer, its details unpacked.
function rpcStatusTypes() {
  const dir = process.env.GOOGLE_PROTOS_DIR;
  if (!dir) return null;
  const root = new protobuf.Root();
  // google/protobuf/* ship with protobufjs; google/rpc/* come from GOOGLE_PROTOS_DIR.
  root.resolvePath = (origin, file) => (file.startsWith("google/protobuf/") ? file : path.join(dir, file));
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });
  return root;
}
function errorDetails(root, err) {
  const raw = err.metadata && err.metadata.get("grpc-status-details-bin")[0];
  if (!root || !raw) return [];
  const status = root.lookupType("google.rpc.Status").decode(raw);
  return status.details.map((any) => {
    const type = root.lookupType(any.type_url.split("/").pop());
    return { type: type.fullName.replace(/^\./, ""), value: type.toObject(type.decode(any.value)) };
  });
}

async function main() {
  const plan = (
    await call(plans, "CreatePlan", {
      plan: {
        name: "Node example",
        projectId: "node",
        agents: [
          { id: "ann", name: "Ann", capabilities: ["React", "TypeScript"] },
          { id: "bo", name: "Bo", capabilities: ["PostgreSQL", "Python"] },
        ],
      },
      requestId: `${runId}-plan`, // the idempotency key: a rerun returns this plan
    })
  ).plan;
  console.log(`plan ${plan.id} ${plan.name}: ${plan.status}`);

  // The brief's context is a google.protobuf.Struct.
  const generated = (
    await call(planning, "GeneratePlan", {
      brief: {
        name: "Orders API",
        description: "Build a backend API service for orders with a PostgreSQL database",
        requirements: ["REST API for orders", "PostgreSQL schema"],
        availableAgents: plan.agents,
        context: toStruct({ environment: "production", backup_required: true }),
      },
    })
  ).result;
  const used = Object.keys(generated.contextUsed).sort().join(",");
  console.log(`generated ${generated.tasks.length} tasks; context used: ${used}`);

  // Generated tasks have local ids (t1, ...) that their dependencies name: one atomic
  // batch takes them as batch references. Same request id, same batch: a rerun is safe.
  const created = (
    await call(plans, "BatchCreateTasks", {
      planId: plan.id,
      tasks: generated.tasks.map((g) => g.task),
      requestId: `${runId}-tasks`,
    })
  ).tasks;
  console.log(`created ${created.length} tasks`);

  const page = await call(plans, "ListTasks", { planId: plan.id, pageSize: 3 });
  for (const t of page.tasks) console.log(`task ${t.title}: ${t.status} ${t.priority}`);
  console.log(`total ${page.totalSize}`);

  const root = rpcStatusTypes();
  try {
    await call(plans, "GetPlan", { planId: "pln_missing" });
  } catch (err) {
    console.log(`error ${grpc.status[err.code]}: ${err.details}`);
    for (const d of errorDetails(root, err)) {
      if (d.type === "google.rpc.ErrorInfo") console.log(`  reason ${d.value.reason}`);
      if (d.type === "google.rpc.ResourceInfo") {
        console.log(`  resource ${d.value.resource_type} ${d.value.resource_name}`);
      }
    }
  }
  plans.close();
  planning.close();
  console.log("done");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
