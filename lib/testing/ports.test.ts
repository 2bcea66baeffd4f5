import assert from "node:assert/strict";
import { createServer } from "node:net";
import { ephemeralRange, freePorts } from "./ports.js";

describe("freePorts", () => {
  it("gives distinct ports that can be bound, all below the ephemeral range outgoing connections take theirs from", async function () {
    const range = ephemeralRange();
    if (!range) this.skip();
    const ports = await freePorts(40);
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) assert.ok(port >= 10_000 && port < range![0], `port ${port} is inside ${range}`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(ports[0], "127.0.0.1", resolve));
    await new Promise((resolve) => server.close(resolve));
  });
});
