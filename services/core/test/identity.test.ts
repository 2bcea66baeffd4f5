/** The identity files a sandbox shows: system accounts kept, host users and group members gone, devex added. */
import assert from "node:assert/strict";
import { hostFiles, sandboxIdentity } from "../src/driver/local/identity.js";

describe("sandbox identity files", () => {
  const passwd = [
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash",
    "bob:x:1001:1001::/home/bob:/bin/zsh",
    "devex:x:999:999::/srv/devex:/bin/sh",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    "",
  ].join("\n");
  const group = [
    "root:x:0:",
    "sudo:x:27:alice,bob",
    "docker:x:999:alice",
    "alice:x:1000:",
    "nogroup:x:65534:",
    "",
  ].join("\n");

  it("keeps the host's system accounts, drops its users and every group's members, and adds devex", () => {
    const id = sandboxIdentity(passwd, group);
    assert.equal(
      id.passwd,
      [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "devex:x:1000:1000:Devex:/home/devex:/bin/bash",
        "",
      ].join("\n"),
    );
    assert.equal(
      id.group,
      ["root:x:0:", "sudo:x:27:", "docker:x:999:", "nogroup:x:65534:", "devex:x:1000:", ""].join("\n"),
    );
    for (const name of ["alice", "bob", "/srv/devex"]) assert.ok(!`${id.passwd}${id.group}`.includes(name), name);
  });

  it("names the repl in hostname and hosts", () => {
    const f = hostFiles("r1234");
    assert.equal(f.hostname, "r1234\n");
    assert.match(f.hosts, /^127\.0\.1\.1\tr1234$/m);
    assert.match(f.hosts, /^127\.0\.0\.1\tlocalhost$/m);
  });
});
