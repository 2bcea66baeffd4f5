import assert from "node:assert/strict";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { loadContracts } from "../../../lib/contracts/registry.js";
import { createArgumentParser } from "../src/tool-arguments.js";
import { buildToolCatalog, snakeCase } from "../src/tools/catalog.js";
import { toolAllowed, toolScopes } from "../src/tools/tool-scopes.js";

describe("MCP tool catalog derived from devex.mcp.v1 descriptors", () => {
  const catalog = buildToolCatalog(loadContracts());
  const byName = new Map(catalog.map((t) => [t.name, t]));

  it("has one snake_case tool per RPC, each with a description and annotations", () => {
    assert.equal(snakeCase("ReadMultipleFiles"), "read_multiple_files");
    assert.equal(snakeCase("ListGitHubRepositories"), "list_github_repositories");
    for (const name of [
      "list_repls",
      "list_templates",
      "list_github_repositories",
      "create_repl",
      "start_repl",
      "stop_repl",
      "delete_repl",
      "get_repl_status",
      "get_network_policy",
      "set_network_policy",
      "list_files",
      "directory_tree",
      "read_file",
      "read_multiple_files",
      "write_file",
      "edit_file",
      "create_directory",
      "move_file",
      "delete_file",
      "search_files",
      "stat_file",
      "exec",
      "start_process",
      "list_processes",
      "read_process_output",
      "kill_process",
      "create_terminal",
      "send_terminal_input",
      "read_terminal_output",
      "close_terminal",
      "get_preview_url",
      "list_environment_variables",
      "set_environment_variable",
      "delete_environment_variable",
    ]) {
      const tool = byName.get(name);
      assert.ok(tool, `tool ${name}`);
      assert.ok(tool.description.length > 20, `${name} description`);
    }
    assert.equal(byName.get("delete_repl")?.annotations.destructiveHint, true);
    assert.equal(byName.get("list_environment_variables")?.annotations.readOnlyHint, true);
    assert.equal(byName.get("delete_environment_variable")?.annotations.destructiveHint, true);
    const setVariable = byName.get("set_environment_variable")!;
    assert.equal(setVariable.annotations.destructiveHint, true, "it overwrites a secret that cannot be read back");
    assert.equal(setVariable.annotations.readOnlyHint, false);
    assert.match(setVariable.description, /write-only.*within a second.*already running keep/s);
    assert.doesNotMatch(setVariable.description, /afterwards/);
    assert.match(byName.get("delete_environment_variable")!.description, /within a second/);
    assert.equal(byName.get("read_file")?.annotations.readOnlyHint, true);
    assert.equal(byName.get("read_file")?.annotations.destructiveHint, false);
  });

  it("has save_template (exec: it carries commands) and delete_template (as the other repl writes)", () => {
    const save = byName.get("save_template")!;
    assert.equal(save.annotations.readOnlyHint, false);
    assert.equal(save.annotations.destructiveHint, false, "it only adds a template");
    assert.match(save.description, /stopped repl.*call stop_repl first/s);
    assert.deepEqual(((save.inputSchema.required as string[]) ?? []).sort(), ["repl_id", "title"]);
    const props = save.inputSchema.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(props).sort(), [
      "description",
      "preview_port",
      "repl_id",
      "run_command",
      "setup_command",
      "title",
    ]);
    assert.equal(props.preview_port.maximum, 65535);
    const remove = byName.get("delete_template")!;
    assert.equal(remove.annotations.destructiveHint, true);
    assert.equal(remove.annotations.idempotentHint, true);
    assert.deepEqual(remove.inputSchema.required, ["name"]);
    assert.deepEqual(
      toolScopes.delete_template,
      toolScopes.create_repl,
      "delete_template needs what create_repl needs",
    );
    // A template's setup command runs by itself in every repl made from it: exec, as core's SaveTemplate.
    assert.deepEqual(toolScopes.save_template, ["exec"]);
    const listed = byName.get("list_templates")!.outputSchema as {
      properties: Record<string, Record<string, unknown>>;
    };
    const template = (listed.properties.templates.items as { properties: Record<string, unknown> }).properties;
    for (const field of ["setup_command", "preview_port", "owner", "title", "run_command"])
      assert.ok(template[field], field);
    const repl = byName.get("get_repl_status")!.outputSchema as { properties: Record<string, Record<string, unknown>> };
    const summary = (repl.properties.repl as { properties: Record<string, Record<string, unknown>> }).properties;
    assert.ok(summary.setup && summary.run_command && summary.preview_port);
    assert.match(
      String((summary.setup.properties as Record<string, { description: string }>).status.description),
      /read_process_output/,
    );
  });

  it("has the checkpoint tools, with core's scopes and hints an agent can trust", () => {
    const hints = (name: string) => {
      const { readOnlyHint, destructiveHint, idempotentHint } = byName.get(name)!.annotations;
      return { readOnlyHint, destructiveHint, idempotentHint };
    };
    const hint = (readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean) => ({
      readOnlyHint,
      destructiveHint,
      idempotentHint,
    });
    assert.deepEqual(hints("checkpoint"), hint(false, false, false));
    assert.deepEqual(hints("list_checkpoints"), hint(true, false, true));
    assert.deepEqual(hints("diff_checkpoints"), hint(true, false, true));
    assert.deepEqual(hints("restore_checkpoint"), hint(false, true, false), "it replaces files and restarts");
    assert.deepEqual(hints("fork_repl"), hint(false, false, false));
    assert.deepEqual(hints("delete_checkpoint"), hint(false, true, true));
    assert.deepEqual(
      Object.fromEntries(
        [
          "checkpoint",
          "list_checkpoints",
          "diff_checkpoints",
          "restore_checkpoint",
          "fork_repl",
          "delete_checkpoint",
        ].map((t) => [t, toolScopes[t]]),
      ),
      {
        checkpoint: ["repls:write"],
        list_checkpoints: ["repls:read"],
        diff_checkpoints: ["files:read", "files:write"],
        restore_checkpoint: ["files:write"],
        fork_repl: ["repls:write"],
        delete_checkpoint: ["repls:write"],
      },
    );
    const description = (name: string) => byName.get(name)!.description;
    assert.match(description("checkpoint"), /before a risky change/);
    assert.match(description("restore_checkpoint"), /undo.*running repl is restarted/s);
    assert.match(description("fork_repl"), /in parallel.*cheap.*repl quota/s);
    assert.match(description("diff_checkpoints"), /include_patches.*paths/s);
    const fork = byName.get("fork_repl")!.inputSchema as { properties: Record<string, Record<string, unknown>> };
    assert.deepEqual(byName.get("fork_repl")!.inputSchema.required, ["repl_id"]);
    assert.equal(fork.properties.count.maximum, 20);
    assert.equal(fork.properties.name.pattern, "^[A-Za-z0-9][A-Za-z0-9 ._-]*$");
    assert.deepEqual(((byName.get("diff_checkpoints")!.inputSchema.required as string[]) ?? []).sort(), [
      "from_checkpoint_id",
      "repl_id",
    ]);
    assert.deepEqual(((byName.get("restore_checkpoint")!.inputSchema.required as string[]) ?? []).sort(), [
      "checkpoint_id",
      "repl_id",
    ]);
  });

  it("turns field comments and protovalidate rules into JSON Schema", () => {
    const input = byName.get("create_repl")!.inputSchema as {
      properties: Record<string, Record<string, unknown>>;
      required: string[];
      additionalProperties: boolean;
    };
    assert.deepEqual(input.required.sort(), ["name"], "a template or a git repository: core says which is missing");
    assert.equal(input.additionalProperties, false);
    assert.equal(input.properties.name.maxLength, 64);
    assert.equal(input.properties.name.pattern, "^[A-Za-z0-9][A-Za-z0-9 ._-]*$");
    assert.match(String(input.properties.template.description), /list_templates/);

    const exec = byName.get("exec")!.inputSchema as { properties: Record<string, Record<string, unknown>> };
    assert.equal(exec.properties.timeout_seconds.type, "integer");
    assert.equal(exec.properties.timeout_seconds.maximum, 3600);
    assert.equal(exec.properties.env.type, "object");

    const files = byName.get("read_multiple_files")!.inputSchema as {
      properties: Record<string, Record<string, unknown>>;
    };
    assert.equal(files.properties.paths.minItems, 1);
    assert.equal(files.properties.paths.maxItems, 32);
  });

  it("describes outputs, including nested messages, with 64-bit integers as JSON numbers", () => {
    const out = byName.get("list_files")!.outputSchema as { properties: Record<string, Record<string, unknown>> };
    const items = out.properties.entries.items as { properties: Record<string, Record<string, unknown>> };
    assert.equal(items.properties.size.type, "integer");
    assert.equal(items.properties.size.minimum, 0);
    assert.equal(items.properties.size.maximum, Number.MAX_SAFE_INTEGER);
    assert.equal(items.properties.path.type, "string");
  });

  it("requires exactly the arguments protovalidate refuses to leave out", () => {
    const required = (name: string) => ((byName.get(name)!.inputSchema.required as string[] | undefined) ?? []).sort();
    // A port of 0 breaks its range rule, so the port is required although it has no length rule.
    assert.deepEqual(required("get_preview_url"), ["port", "repl_id"]);
    assert.deepEqual(required("list_files"), ["repl_id"]);
    assert.deepEqual(required("edit_file"), ["edits", "path", "repl_id"]);
    assert.deepEqual(required("list_repls"), []);
    assert.deepEqual(required("set_network_policy"), ["policy", "repl_id"]);
    assert.deepEqual(
      required("create_repl"),
      ["name"],
      "the template (unless git), network policy and git are optional",
    );
    const git = (byName.get("create_repl")!.inputSchema.properties as Record<string, { required?: string[] }>).git;
    assert.deepEqual(
      git.required,
      ["url"],
      "a repository is named by its URL; ref, full_history and allow_push are optional",
    );
    assert.deepEqual(required("list_github_repositories"), [], "the page is optional");
    const edits = (byName.get("edit_file")!.inputSchema.properties as Record<string, { items: { required: string[] } }>)
      .edits;
    assert.deepEqual(edits.items.required, ["old_text"]);
  });

  it("refuses an empty call to every tool with exactly its schema's required arguments, each named as missing", () => {
    const parse = createArgumentParser();
    for (const tool of catalog) {
      const required = (tool.inputSchema.required as string[] | undefined) ?? [];
      let refusal = "";
      try {
        parse(tool, {});
      } catch (e) {
        refusal = (e as Error).message;
      }
      const missing = refusal ? refusal.replace(/^.*invalid arguments for \w+: /, "").split("; ") : [];
      assert.deepEqual(
        missing.sort(),
        required.map((name) => `${name} is required`).sort(),
        `${tool.name}: every other argument can be left out`,
      );
    }
  });

  it("describes the network policy: its modes as an enum, mode required once a policy is given", () => {
    const set = byName.get("set_network_policy")!;
    const policy = (set.inputSchema.properties as Record<string, Record<string, unknown>>).policy;
    const props = policy.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props.mode.enum, ["allow_all", "deny_all", "allowlist", "default"]);
    assert.deepEqual(policy.required, ["mode"]);
    assert.equal(props.domains.maxItems, 256);
    assert.match(String(props.domains.description), /\*\.github\.com/);
    assert.equal(set.annotations.idempotentHint, true);
    assert.equal(byName.get("get_network_policy")!.annotations.readOnlyHint, true);
    const out = byName.get("get_network_policy")!.outputSchema.properties as Record<string, Record<string, unknown>>;
    assert.match(String(out.denied_cidrs.description), /169\.254\.169\.254/);
    const create = byName.get("create_repl")!.inputSchema.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual((create.network.properties as Record<string, unknown>).mode, props.mode);
  });

  it("has the content encoding in read_file's result and write_file's arguments", () => {
    const read = byName.get("read_file")!.outputSchema.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(read.encoding.enum, ["utf-8", "base64"]);
    const write = byName.get("write_file")!;
    const props = write.inputSchema.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props.encoding.enum, ["utf-8", "base64"]);
    assert.ok(!(write.inputSchema.required as string[]).includes("encoding"), "encoding is optional");
  });

  it("accepts tool arguments by proto field name and emits results the same way", () => {
    const tool = byName.get("read_file")!;
    const req = fromJson(tool.method.input, { repl_id: "r1", path: "index.js", head: 5 });
    assert.equal((req as unknown as { replId: string }).replId, "r1");
    const res = toJson(tool.method.output, fromJson(tool.method.output, { content: "x", total_lines: 1 }), {
      useProtoFieldName: true,
    });
    assert.deepEqual(res, { content: "x", total_lines: 1 });
  });

  it("gives every tool a scope rule, and only tools that exist (tool-scopes.ts)", () => {
    assert.deepEqual(
      catalog.map((t) => t.name).filter((n) => !toolScopes[n]),
      [],
    );
    assert.deepEqual(
      Object.keys(toolScopes).filter((n) => !byName.has(n)),
      [],
    );
    // A tool that changes nothing (readOnlyHint) is open to a reading token.
    for (const t of catalog.filter((t) => t.annotations.readOnlyHint))
      assert.ok(toolAllowed(t.name, ["repls:read", "files:read"]) || toolAllowed(t.name, ["exec"]), t.name);
  });
});
