/**
 * The Host/Origin guard against DNS rebinding, as a table of what a browser on a rebinding page
 * (or a confused client) could send, for a local server and for one behind a public name.
 */
import assert from "node:assert/strict";
import { createRebindingGuard } from "../src/rebinding-guard.js";

const local = createRebindingGuard({ publicUrl: "http://127.0.0.1:8091", allowedHosts: [], allowedOrigins: [] });
const publicGuard = (allowedHosts: string[] = [], allowedOrigins: string[] = []) =>
  createRebindingGuard({ publicUrl: "https://mcp.example.com", allowedHosts, allowedOrigins });

describe("rebinding guard", () => {
  describe("a local server", () => {
    const loopbackHosts = [
      "127.0.0.1:8091",
      "127.0.0.1",
      "127.0.0.1:1",
      "localhost",
      "localhost:3000",
      "LOCALHOST:8091",
      "LocalHost",
      "[::1]",
      "[::1]:8091",
      "[::1]:65535",
    ];
    for (const host of loopbackHosts)
      it(`accepts Host ${host}`, () => {
        assert.equal(local(host, undefined), undefined);
      });

    const foreignHosts = [
      "evil.example.com",
      "evil.example.com:8091",
      "127.0.0.1.evil.com",
      "localhost.evil.com:80",
      "evil.com@127.0.0.1",
      "localhost/path",
      "localhost.",
      "",
    ];
    for (const host of foreignHosts)
      it(`refuses Host ${JSON.stringify(host)}, naming the header and value`, () => {
        assert.deepEqual(local(host, undefined), { header: "host", value: host });
      });

    it("refuses a request without Host", () => {
      assert.deepEqual(local(undefined, undefined), { header: "host", value: "" });
    });

    const loopbackOrigins = [
      "http://localhost:5173",
      "https://localhost:5173",
      "HTTP://LOCALHOST:5173",
      "http://[::1]:3000",
      "http://127.0.0.1:8091",
      "http://127.0.0.1",
    ];
    for (const origin of loopbackOrigins)
      it(`accepts Origin ${origin}`, () => {
        assert.equal(local("127.0.0.1:8091", origin), undefined);
      });

    it("accepts a request without Origin (not a browser)", () => {
      assert.equal(local("localhost:8091", undefined), undefined);
    });

    const foreignOrigins = [
      "null",
      "http://evil.example.com",
      "file://",
      "http://127.0.0.1:1/path",
      "ws://localhost:5173",
      "http://user@localhost:5173",
      "http://localhost.evil.com",
      "",
    ];
    for (const origin of foreignOrigins)
      it(`refuses Origin ${JSON.stringify(origin)}, naming the header and value`, () => {
        assert.deepEqual(local("127.0.0.1:8091", origin), { header: "origin", value: origin });
      });

    it("counts all three loopback names as one server, whichever the public URL names", () => {
      const guard = createRebindingGuard({ publicUrl: "http://[::1]:9000", allowedHosts: [], allowedOrigins: [] });
      assert.equal(guard("localhost:8091", "http://127.0.0.1:5173"), undefined);
      assert.deepEqual(guard("evil.example.com:9000", undefined), { header: "host", value: "evil.example.com:9000" });
    });

    it("judges Host before Origin", () => {
      assert.deepEqual(local("evil.example.com", "http://evil.example.com"), {
        header: "host",
        value: "evil.example.com",
      });
    });
  });

  describe("a server behind a public name", () => {
    it("accepts its own Host and Origin, case-insensitively", () => {
      const guard = publicGuard();
      assert.equal(guard("mcp.example.com", undefined), undefined);
      assert.equal(guard("MCP.Example.COM", "https://MCP.example.com"), undefined);
      assert.equal(guard("mcp.example.com:443", undefined), undefined, "the scheme's default port is the same host");
      assert.deepEqual(guard("mcp.example.com:8443", undefined), { header: "host", value: "mcp.example.com:8443" });
      assert.deepEqual(guard("x@mcp.example.com", undefined), { header: "host", value: "x@mcp.example.com" });
    });

    it("refuses loopback Host and Origin that it was not told about", () => {
      const guard = publicGuard();
      assert.deepEqual(guard("127.0.0.1:8091", undefined), { header: "host", value: "127.0.0.1:8091" });
      assert.deepEqual(guard("localhost", undefined), { header: "host", value: "localhost" });
      assert.deepEqual(guard("mcp.example.com", "http://localhost:5173"), {
        header: "origin",
        value: "http://localhost:5173",
      });
      assert.deepEqual(guard("mcp.example.com", "http://mcp.example.com"), {
        header: "origin",
        value: "http://mcp.example.com",
      });
    });

    it("accepts hosts and origins the operator listed, and only those", () => {
      const guard = publicGuard(["127.0.0.1:8091", "Internal.Example:8443"], ["http://localhost:5173"]);
      assert.equal(guard("127.0.0.1:8091", undefined), undefined);
      assert.equal(guard("internal.example:8443", undefined), undefined);
      assert.equal(guard("mcp.example.com", "http://localhost:5173"), undefined);
      assert.equal(guard("mcp.example.com", "http://LOCALHOST:5173"), undefined);
      // A listed host names one port; a listed origin names one port.
      assert.deepEqual(guard("127.0.0.1:8092", undefined), { header: "host", value: "127.0.0.1:8092" });
      assert.deepEqual(guard("mcp.example.com", "http://localhost:5174"), {
        header: "origin",
        value: "http://localhost:5174",
      });
    });
  });
});
