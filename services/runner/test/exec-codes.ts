/**
 * A shared suite: Exec and background processes of a program that cannot run end like in bash (exit
 * 127 or 126 and bash's one-line message on stderr), and a program that runs keeps its own exit
 * code, argv[0] and environment. Run against a standalone runner (no command prefix) and against
 * the local driver's runners with and without bubblewrap (services/core/test/exec-codes.e2e.test.ts).
 * The expected lines are what `bash -i` prints on Debian's bash 5.2 for the same commands.
 */
import assert from "node:assert/strict";
import type { Client } from "@connectrpc/connect";
import type { CommandSpec, ProcessService } from "../../../gen/devex/runner/v1/process_pb.js";
import { waitFor } from "./helpers.js";

type Procs = Client<typeof ProcessService>;
type Command = Partial<Omit<CommandSpec, "$typeName">>;

export async function execIn(procs: Procs, command: Command, stdin?: string) {
  let stdout = "";
  let stderr = "";
  let exitCode: number | undefined;
  const input = stdin === undefined ? undefined : new TextEncoder().encode(stdin);
  for await (const r of procs.exec({ command, stdin: input })) {
    if (r.event.case === "stdout") stdout += Buffer.from(r.event.value).toString();
    if (r.event.case === "stderr") stderr += Buffer.from(r.event.value).toString();
    if (r.event.case === "exit") exitCode = r.event.value.exitCode;
  }
  return { stdout, stderr, exitCode };
}

/** The files the cases run, made with the `shell` form in the repl's workspace. */
const fixtures = [
  "mkdir -p adir first second",
  "printf 'echo should not run\\n' > noexec.sh",
  "printf '#!/nonexistent/interpreter\\necho should not run\\n' > badinterp && chmod +x badinterp",
  "printf 'echo first\\n' > first/tool", // found first on PATH, but not executable
  "printf '#!/bin/sh\\necho second\\n' > second/tool && chmod +x second/tool",
  "pwd",
].join(" && ");

export function execCodeSuite(name: string, procs: () => Procs): void {
  describe(`Exec like bash: ${name}`, function () {
    this.timeout(60_000);
    /** The workspace as the commands see it. */
    let root = "";

    before(async () => {
      const r = await execIn(procs(), { shell: fixtures });
      assert.equal(r.exitCode, 0, r.stderr);
      root = r.stdout.trim();
    });

    const cases: { what: string; argv: string[]; path?: () => string; code: number; stderr: () => string }[] = [
      {
        what: "a name not on PATH",
        argv: ["no-such-program-xyz"],
        code: 127,
        stderr: () => "bash: no-such-program-xyz: command not found\n",
      },
      {
        what: "a path that does not exist",
        argv: ["./missing", "arg"],
        code: 127,
        stderr: () => "bash: ./missing: No such file or directory\n",
      },
      {
        what: "a path through a file",
        argv: ["./noexec.sh/x"],
        code: 126,
        stderr: () => "bash: ./noexec.sh/x: Not a directory\n",
      },
      {
        what: "a file without the x bit",
        argv: ["./noexec.sh"],
        code: 126,
        stderr: () => "bash: ./noexec.sh: Permission denied\n",
      },
      { what: "a directory", argv: ["./adir"], code: 126, stderr: () => "bash: ./adir: Is a directory\n" },
      {
        what: "a script whose interpreter is missing",
        argv: ["./badinterp"],
        code: 127,
        stderr: () => "bash: ./badinterp: cannot execute: required file not found\n",
      },
      {
        what: "a name whose only match on PATH is not executable",
        argv: ["tool"],
        path: () => `${root}/first:/usr/bin:/bin`,
        code: 126,
        stderr: () => `bash: ${root}/first/tool: Permission denied\n`,
      },
    ];
    for (const c of cases) {
      it(`${c.what}: exit ${c.code} and bash's message`, async () => {
        const env: Record<string, string> = c.path ? { PATH: c.path() } : {};
        const r = await execIn(procs(), { argv: c.argv, env });
        assert.deepEqual(r, { stdout: "", stderr: c.stderr(), exitCode: c.code });
      });
    }

    it("a program that runs exits with its own code", async () => {
      assert.deepEqual(await execIn(procs(), { argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] }), {
        stdout: "out\n",
        stderr: "err\n",
        exitCode: 3,
      });
    });

    it("a non-executable file earlier on PATH is passed over for an executable one later", async () => {
      const env = { PATH: `${root}/first:${root}/second:/usr/bin:/bin` };
      assert.deepEqual(await execIn(procs(), { argv: ["tool"], env }), { stdout: "second\n", stderr: "", exitCode: 0 });
    });

    it("the program gets argv[0] as given, its stdin, and the environment's names untouched", async () => {
      const argv0 = await execIn(procs(), { argv: ["sh", "-c", "tr '\\0' ' ' </proc/$$/cmdline"] });
      assert.equal(argv0.stdout, "sh -c tr '\\0' ' ' </proc/$$/cmdline ");
      const stdin = await execIn(procs(), { argv: ["cat"] }, "from-stdin\n");
      assert.equal(stdin.stdout, "from-stdin\n");
      // Names the check itself uses, and one that would make a plain `bash -c` read a file first.
      const env = { f: "1", p: "2", line: "3", BASH_ENV: "/nonexistent" };
      const printed = await execIn(procs(), { argv: ["env"], env });
      for (const [k, v] of Object.entries(env)) assert.ok(printed.stdout.split("\n").includes(`${k}=${v}`), k);
      assert.equal(printed.stderr, "");
    });

    it("a background process of a missing program ends with 127 and the message in its output", async () => {
      const { process: p } = await procs().startProcess({ command: { argv: ["no-such-program-xyz"] } });
      const ended = await waitFor(
        async () => {
          const r = await procs().readProcessOutput({ processId: p!.processId });
          return r.process?.exit && r;
        },
        20_000,
        "the background process to end",
      );
      assert.equal(ended?.process?.exit?.exitCode, 127);
      assert.equal(Buffer.from(ended?.data ?? []).toString(), "bash: no-such-program-xyz: command not found\n");
    });

    it("the shell form is bash -c's own: 127 and bash's message for a missing command", async () => {
      const r = await execIn(procs(), { shell: "no-such-program-xyz" });
      assert.deepEqual(r, {
        stdout: "",
        stderr: "bash: line 1: no-such-program-xyz: command not found\n",
        exitCode: 127,
      });
    });
  });
}
