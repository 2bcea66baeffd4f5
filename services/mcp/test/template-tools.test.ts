/**
 * The template tools against a stand-in for core's ReplService, called through a router transport
 * (no sockets): list_templates says whose each template is, save_template passes what it was given
 * (and only that) and says what to do about a running repl, delete_template names the caller's own
 * templates when the name is not one of them, create_repl takes a private template's name. The
 * agents end-to-end test runs them against the real core.
 */
import assert from "node:assert/strict";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import {
  type Repl,
  ReplSchema,
  ReplService,
  ReplStatus,
  type SaveTemplateRequest,
  SetupStatus,
  TemplateSchema,
} from "../../../gen/devex/core/v1/repl_pb.js";
import {
  CreateReplRequestSchema,
  DeleteTemplateRequestSchema,
  ListTemplatesRequestSchema,
  SaveTemplateRequestSchema,
} from "../../../gen/devex/mcp/v1/agent_tools_pb.js";
import { createCoreClients } from "../../../lib/client/clients.js";
import { ALL_API_SCOPES } from "../../../lib/contracts/api-scopes.js";
import { isKind } from "../../../lib/kit/errors.js";
import { createToolReport } from "../src/tool-report.js";
import { createAgentTools } from "../src/tools/agent-tools.js";

const saveRequest = (init: MessageInitShape<typeof SaveTemplateRequestSchema>) =>
  create(SaveTemplateRequestSchema, init);

const caller = { token: "tok", userId: "alice", scopes: [...ALL_API_SCOPES] };
const signal = new AbortController().signal;

const templates = [
  create(TemplateSchema, { name: "node", title: "Node.js", runCommand: "node index.js" }),
  create(TemplateSchema, {
    name: "alice-api",
    title: "My API",
    runCommand: "npm start",
    setupCommand: "npm install",
    previewPort: 3000,
    owner: "alice",
  }),
];

function fakeCore() {
  const repls = new Map<string, Repl>([
    ["stopped-1", create(ReplSchema, { replId: "stopped-1", name: "s", status: ReplStatus.STOPPED })],
    ["running-1", create(ReplSchema, { replId: "running-1", name: "r", status: ReplStatus.RUNNING })],
  ]);
  const saved: SaveTemplateRequest[] = [];
  const created: string[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(ReplService, {
      listTemplates: () => ({ templates }),
      listRepls: () => ({ repls: [...repls.values()] }),
      getRepl(req) {
        const repl = repls.get(req.replId);
        if (!repl) throw new ConnectError("no such repl", Code.NotFound);
        return { repl };
      },
      saveTemplate(req) {
        saved.push(req);
        return {
          template: create(TemplateSchema, {
            name: "alice-saved",
            title: req.title,
            runCommand: req.runCommand ?? "node index.js",
            setupCommand: req.setupCommand ?? "",
            previewPort: req.previewPort ?? 0,
            owner: "alice",
          }),
        };
      },
      deleteTemplate(req) {
        if (req.name !== "alice-api") throw new ConnectError("no template", Code.NotFound);
        return {};
      },
      createRepl(req) {
        created.push(req.template);
        const repl = create(ReplSchema, {
          replId: "new-1",
          name: req.name,
          template: req.template,
          status: ReplStatus.STOPPED,
          runCommand: "npm start",
          previewPort: 3000,
          setup: { command: "npm install", status: SetupStatus.PENDING },
        });
        return { repl };
      },
    });
  });
  const tools = createAgentTools({
    core: () => createCoreClients(transport),
    runner: () => {
      throw new Error("no runner in this test");
    },
  });
  return { tools, saved, created };
}

const report = createToolReport(async () => {}, undefined, { level: undefined });

describe("template tools (save_template, delete_template, list_templates)", () => {
  it("list_templates shows each template's commands, port and whose it is", async () => {
    const { tools } = fakeCore();
    const res = await tools.listTemplates(create(ListTemplatesRequestSchema), caller, signal, report);
    assert.deepEqual(res.templates, [
      {
        name: "node",
        title: "Node.js",
        description: "",
        runCommand: "node index.js",
        setupCommand: "",
        previewPort: 0,
        owner: "operator",
      },
      {
        name: "alice-api",
        title: "My API",
        description: "",
        runCommand: "npm start",
        setupCommand: "npm install",
        previewPort: 3000,
        owner: "you",
      },
    ]);
  });

  it("save_template passes only what was given, and refuses a running repl saying to stop it first", async () => {
    const { tools, saved } = fakeCore();
    const plain = await tools.saveTemplate(saveRequest({ replId: "stopped-1", title: "Mine" }), caller, signal, report);
    assert.equal(plain.template?.name, "alice-saved");
    assert.equal(plain.template?.owner, "you");
    assert.equal(saved[0].runCommand, undefined, "left out: the repl's own");
    assert.equal(saved[0].setupCommand, undefined);
    assert.equal(saved[0].previewPort, undefined);

    const full = await tools.saveTemplate(
      saveRequest({
        replId: "stopped-1",
        title: "Mine",
        description: "d",
        runCommand: "",
        setupCommand: "make",
        previewPort: 8080,
      }),
      caller,
      signal,
      report,
    );
    assert.deepEqual([saved[1].runCommand, saved[1].setupCommand, saved[1].previewPort], ["", "make", 8080]);
    assert.equal(full.template?.previewPort, 8080);

    await assert.rejects(
      tools.saveTemplate(saveRequest({ replId: "running-1", title: "x" }), caller, signal, report),
      (e: unknown) =>
        isKind(e, "failed-precondition") && /repl "running-1" is running: .*call stop_repl first/.test(e.message),
    );
    assert.equal(saved.length, 2, "core was not asked for the running repl");
    await assert.rejects(
      tools.saveTemplate(saveRequest({ replId: "nope", title: "x" }), caller, signal, report),
      (e: unknown) =>
        isKind(e, "not-found") && /repl "nope" not found\. Your repls: stopped-1, running-1/.test(e.message),
    );
  });

  it("delete_template deletes the caller's own; another name is NotFound naming theirs", async () => {
    const { tools } = fakeCore();
    assert.deepEqual(
      await tools.deleteTemplate(create(DeleteTemplateRequestSchema, { name: "alice-api" }), caller, signal, report),
      {
        name: "alice-api",
      },
    );
    await assert.rejects(
      tools.deleteTemplate(create(DeleteTemplateRequestSchema, { name: "node" }), caller, signal, report),
      (e: unknown) =>
        isKind(e, "not-found") &&
        /you have no template "node" \(the server's templates cannot be deleted\)\. Yours: alice-api\./.test(e.message),
    );
  });

  it("create_repl takes a private template's name and shows the repl's run command, port and setup", async () => {
    const { tools, created } = fakeCore();
    const res = await tools.createRepl(
      create(CreateReplRequestSchema, { name: "from-mine", template: "alice-api" }),
      caller,
      signal,
      report,
    );
    assert.deepEqual(created, ["alice-api"]);
    assert.equal(res.repl?.template, "alice-api");
    assert.equal(res.repl?.runCommand, "npm start");
    assert.equal(res.repl?.previewPort, 3000);
    assert.deepEqual(res.repl?.setup, { command: "npm install", status: "pending", exitCode: 0, message: "" });
  });
});
