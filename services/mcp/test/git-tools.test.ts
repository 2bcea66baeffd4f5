/**
 * create_repl with a git repository, against a stand-in for core's ReplService called through a
 * router transport (no sockets): the arguments as an agent writes them (parsed and validated as the
 * server does) reach CreateRepl as a GitSource (allow_push included); the tool follows WatchRepl and
 * returns the repl once it runs cloned, with progress notifications from git's counts and whether
 * its git goes through the GitHub grant; a clone that fails (the repl deleted, its last message
 * saying why) is an error with that reason; a clone past the wait is an error saying it goes on.
 * list_github_repositories passes the page and core's repositories on, and core's refusal (no
 * GitHub sign-in) as it is. The agents end-to-end test clones for real.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import {
  CloneStatus,
  type CreateReplRequest,
  type ListGitHubRepositoriesRequest,
  type Repl,
  ReplSchema,
  ReplService,
  ReplStatus,
  type WatchReplResponse,
  WatchReplResponseSchema,
} from "../../../gen/devex/core/v1/repl_pb.js";
import { createCoreClients } from "../../../lib/client/clients.js";
import { ALL_API_SCOPES } from "../../../lib/contracts/api-scopes.js";
import { loadContracts } from "../../../lib/contracts/registry.js";
import { isKind } from "../../../lib/kit/errors.js";
import { createArgumentParser } from "../src/tool-arguments.js";
import { createToolReport } from "../src/tool-report.js";
import { createAgentTools } from "../src/tools/agent-tools.js";
import { buildToolCatalog } from "../src/tools/catalog.js";
import { toolAllowed } from "../src/tools/tool-scopes.js";

const caller = { token: "tok", userId: "alice", scopes: [...ALL_API_SCOPES] };
const url = "https://git.example.com/team/app.git";
const commit = "0123456789abcdef0123456789abcdef01234567";

type Script = (repl: Repl) => Array<Partial<WatchReplResponse> | "hang" | "gone">;

/** The repl core makes of `req`, at `status`, its clone at `clone`. */
function replOf(
  req: CreateReplRequest,
  status: ReplStatus,
  clone: CloneStatus,
  extra: { commit?: string; lastError?: string; githubGrant?: boolean } = {},
) {
  return create(ReplSchema, {
    replId: "git-1",
    name: req.name,
    template: req.template,
    status,
    lastError: extra.lastError ?? "",
    git: { source: req.git, status: clone, commit: extra.commit ?? "", githubGrant: extra.githubGrant ?? false },
  });
}

/** A core whose WatchRepl plays `script` for the created repl. */
function fakeCore(script: Script, limits: { cloneWaitMs?: number } = {}) {
  const created: CreateReplRequest[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(ReplService, {
      createRepl(req) {
        created.push(req);
        return { repl: replOf(req, ReplStatus.STARTING, CloneStatus.CLONING) };
      },
      async *watchRepl(_req, ctx) {
        for (const m of script(replOf(created[0], ReplStatus.STARTING, CloneStatus.CLONING))) {
          if (m === "gone") throw new ConnectError("repl git-1 was deleted: clone failed: not found", Code.NotFound);
          if (m === "hang") {
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
            return;
          }
          yield create(WatchReplResponseSchema, m as WatchReplResponse);
        }
      },
    });
  });
  const tools = createAgentTools({
    core: () => createCoreClients(transport),
    runner: () => {
      throw new Error("no runner in this test");
    },
    limits,
  });
  return { tools, created };
}

function reporter() {
  const sent: ServerNotification[] = [];
  const report = createToolReport(
    async (n) => {
      sent.push(n);
    },
    "tok-1",
    { level: "debug" },
  );
  return { report, sent };
}

const catalog = buildToolCatalog(loadContracts());
const createTool = catalog.find((t) => t.name === "create_repl")!;
const parse = createArgumentParser();
const args = (a: Record<string, unknown>) =>
  parse(createTool, a) as unknown as Parameters<ReturnType<typeof createAgentTools>["createRepl"]>[0];
const signal = new AbortController().signal;

describe("create_repl from a git repository", () => {
  it("takes git.url, git.ref and git.full_history (the template optional) and refuses a bad ref before calling core", () => {
    const ok = args({ name: "app", git: { url, ref: "feature/x", full_history: true, allow_push: true } });
    assert.equal(ok.template, "");
    assert.deepEqual(
      [ok.git?.url, ok.git?.ref, ok.git?.fullHistory, ok.git?.allowPush],
      [url, "feature/x", true, true],
    );
    assert.equal(args({ name: "app", git: { url } }).git?.allowPush, false, "no push unless asked");
    assert.throws(() => args({ name: "app", git: { url, ref: "--upload-pack=x" } }), /git\.ref: /);
    assert.throws(() => args({ name: "app", git: { ref: "main" } }), /git\.url is required/);
    assert.throws(() => args({ name: "app", git: { url, depth: 1 } }), /depth/);
  });

  it("passes the repository to core, reports git's progress, and returns the repl running with its commit", async () => {
    const { tools, created } = fakeCore((repl) => [
      { repl },
      { repl, progress: { phase: "clone", filesDone: 50n, filesTotal: 200n, bytesDone: 1048576n } as never },
      { repl, progress: { phase: "clone", filesDone: 200n, filesTotal: 200n, bytesDone: 3145728n } as never },
      { repl: replOf(created[0], ReplStatus.RUNNING, CloneStatus.DONE, { commit }) },
    ]);
    const { report, sent } = reporter();
    const res = await tools.createRepl(
      args({ name: "app", template: "node", git: { url, ref: "v1" } }),
      caller,
      signal,
      report,
    );
    await report.settled();
    assert.equal(created[0].git?.url, url);
    assert.equal(created[0].git?.ref, "v1");
    assert.equal(created[0].git?.fullHistory, false);
    assert.equal(created[0].template, "node");
    assert.equal(res.repl?.status, "running");
    assert.deepEqual(res.repl?.git, {
      url,
      ref: "v1",
      status: "done",
      commit,
      githubGrant: false,
      allowPush: false,
    });
    const progress = sent
      .filter((n) => n.method === "notifications/progress")
      .map((n) => n.params as Record<string, unknown>);
    assert.deepEqual(
      progress.map((p) => p.message),
      [
        `cloning ${url} into repl git-1`,
        `cloning ${url}: 50 of 200 objects, 1.0 MiB`,
        `cloning ${url}: 200 of 200 objects, 3.0 MiB`,
        `repl git-1 is running, cloned at ${commit.slice(0, 12)}`,
      ],
    );
    const values = progress.map((p) => p.progress as number);
    assert.deepEqual(
      [...values].sort((a, b) => a - b),
      values,
      "progress only grows",
    );
    assert.equal(values.at(-1), 1);
  });

  it("allow_push reaches core, and the repl says its git goes through the GitHub grant and may push", async () => {
    const { tools, created } = fakeCore((repl) => [
      { repl },
      { repl: replOf(created[0], ReplStatus.RUNNING, CloneStatus.DONE, { commit, githubGrant: true }) },
    ]);
    const res = await tools.createRepl(
      args({ name: "app", git: { url, allow_push: true } }),
      caller,
      signal,
      reporter().report,
    );
    assert.equal(created[0].git?.allowPush, true);
    assert.deepEqual(res.repl?.git, { url, ref: "", status: "done", commit, githubGrant: true, allowPush: true });
  });

  it("a failed clone is an error with core's reason", async () => {
    const { tools, created } = fakeCore((repl) => [
      { repl },
      {
        repl: replOf(created[0], ReplStatus.DELETING, CloneStatus.CLONING, {
          lastError: "clone failed: Remote branch nope not found in upstream origin",
        }),
      },
    ]);
    await assert.rejects(
      tools.createRepl(args({ name: "app", git: { url, ref: "nope" } }), caller, signal, reporter().report),
      (e: unknown) =>
        isKind(e, "failed-precondition") &&
        /^clone failed: Remote branch nope not found in upstream origin \(repl git-1 was deleted/.test(e.message),
    );
  });

  it("a repl deleted before the watch opened: the reason comes from core's NotFound", async () => {
    const { tools } = fakeCore(() => ["gone"]);
    await assert.rejects(
      tools.createRepl(args({ name: "app", git: { url } }), caller, signal, reporter().report),
      (e: unknown) =>
        isKind(e, "failed-precondition") && e.message === "repl git-1 was deleted: clone failed: not found",
    );
  });

  it("a clone past the wait is an error saying it goes on; without git nothing is awaited", async () => {
    const { tools } = fakeCore((repl) => [{ repl }, "hang"], { cloneWaitMs: 200 });
    await assert.rejects(
      tools.createRepl(args({ name: "app", git: { url } }), caller, signal, reporter().report),
      (e: unknown) => isKind(e, "deadline-exceeded") && /still being cloned .* the clone goes on/.test(e.message),
    );
    const plain = await tools.createRepl(args({ name: "plain", template: "node" }), caller, signal, reporter().report);
    assert.equal(plain.repl?.git, undefined);
  });
});

/** A core whose ListGitHubRepositories answers with `answer` (or throws it), recording the requests. */
function gitHubCore(answer: { repositories: unknown[]; more: boolean } | ConnectError) {
  const asked: ListGitHubRepositoriesRequest[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(ReplService, {
      listGitHubRepositories(req) {
        asked.push(req);
        if (answer instanceof ConnectError) throw answer;
        return answer as never;
      },
    });
  });
  const tools = createAgentTools({
    core: () => createCoreClients(transport),
    runner: () => {
      throw new Error("no runner in this test");
    },
  });
  return { tools, asked };
}

describe("list_github_repositories", () => {
  const listTool = catalog.find((t) => t.name === "list_github_repositories")!;
  const listArgs = (a: Record<string, unknown>) =>
    parse(listTool, a) as unknown as Parameters<ReturnType<typeof createAgentTools>["listGitHubRepositories"]>[0];

  it("is a read-only tool for a repls:read token that reaches beyond the repl", () => {
    assert.ok(listTool, "in the catalog");
    assert.equal(listTool.annotations.readOnlyHint, true);
    assert.equal(listTool.annotations.openWorldHint, true);
    assert.equal(listTool.annotations.destructiveHint, false);
    assert.match(listTool.description, /clone_url.*git\.url/s);
    assert.ok(toolAllowed("list_github_repositories", ["repls:read"]));
    assert.ok(!toolAllowed("list_github_repositories", ["files:read", "exec"]));
    assert.throws(() => listArgs({ page: 1001 }), /page/);
  });

  it("passes the page to core and returns its repositories with their clone URLs", async () => {
    const { tools, asked } = gitHubCore({
      repositories: [
        {
          fullName: "alice/secret-app",
          cloneUrl: "https://github.com/alice/secret-app.git",
          private: true,
          defaultBranch: "main",
          description: "private things",
          pushTime: timestampFromDate(new Date("2026-11-30T12:00:00Z")),
        },
        { fullName: "acme/site", cloneUrl: "https://github.com/acme/site.git", defaultBranch: "trunk" },
      ],
      more: true,
    });
    const res = await tools.listGitHubRepositories(listArgs({ page: 2 }), caller, signal, reporter().report);
    assert.equal(asked[0].page, 2);
    assert.equal(res.more, true);
    assert.deepEqual(res.repositories, [
      {
        fullName: "alice/secret-app",
        cloneUrl: "https://github.com/alice/secret-app.git",
        private: true,
        defaultBranch: "main",
        description: "private things",
        pushTime: "2026-11-30T12:00:00.000Z",
      },
      {
        fullName: "acme/site",
        cloneUrl: "https://github.com/acme/site.git",
        private: false,
        defaultBranch: "trunk",
        description: "",
        pushTime: "",
      },
    ]);
    await tools.listGitHubRepositories(listArgs({}), caller, signal, reporter().report);
    assert.equal(asked[1].page, 0, "left out: the first page");
  });

  it("without a GitHub sign-in: core's FailedPrecondition, which says what to do", async () => {
    const said = "listing your GitHub repositories: this needs a GitHub sign-in";
    const { tools } = gitHubCore(new ConnectError(said, Code.FailedPrecondition));
    await assert.rejects(
      tools.listGitHubRepositories(listArgs({}), caller, signal, reporter().report),
      (e: unknown) => e instanceof ConnectError && e.code === Code.FailedPrecondition && e.rawMessage === said,
    );
  });
});
