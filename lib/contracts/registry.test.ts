import assert from "node:assert/strict";
import { getOption, hasOption } from "@bufbuild/protobuf";
import { AgentToolsService } from "../../gen/devex/mcp/v1/agent_tools_pb.js";
import { tool } from "../../gen/devex/mcp/v1/options_pb.js";
import { docOf, loadContracts } from "./registry.js";

describe("contracts with doc comments (descriptors/devex.binpb)", () => {
  const registry = loadContracts();

  it("documents every service, RPC and field of Devex's own packages", () => {
    const missing: string[] = [];
    for (const file of registry.files) {
      if (!file.name.startsWith("devex/")) continue;
      for (const service of file.services) {
        if (!docOf(service)) missing.push(service.typeName);
        for (const method of service.methods) if (!docOf(method)) missing.push(`${service.typeName}.${method.name}`);
      }
      for (const message of file.messages) {
        for (const field of message.fields) if (!docOf(field)) missing.push(`${message.typeName}.${field.name}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it("gives every agent tool a description and annotations", () => {
    const service = registry.getService(AgentToolsService.typeName);
    assert.ok(service, "AgentToolsService is in the descriptor set");
    assert.equal(service.methods.length, AgentToolsService.methods.length);
    for (const method of AgentToolsService.methods) {
      assert.ok(hasOption(method, tool), `${method.name} has (devex.mcp.v1.tool)`);
      assert.ok(getOption(method, tool).title, `${method.name} has a title`);
      const described = service.methods.find((m) => m.name === method.name);
      assert.ok(described && docOf(described).length > 20, `${method.name} has a description`);
    }
    const del = AgentToolsService.method.deleteRepl;
    assert.equal(getOption(del, tool).destructive, true);
    assert.equal(getOption(AgentToolsService.method.readFile, tool).readOnly, true);
  });
});
