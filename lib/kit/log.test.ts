import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { spawn as spawnPty } from "@lydell/node-pty";
import { createLogger, type LogFormat, logFormat } from "./log.js";
import { formatLines, formatRecord, formatValue, type LogRecord, type PrettyOptions } from "./log-pretty.js";

const ESC = "\x1b";
const root = join(import.meta.dirname, "..", "..");
const plain: PrettyOptions = { colour: false, verbose: () => false };
const at = new Date(2024, 0, 2, 3, 4, 5, 6).getTime();
const stack = "TypeError: boom\n    at f (/app/a.ts:1:2)\n    at g (/app/b.ts:3:4)";

function record(fields: LogRecord): LogRecord {
  return { level: 30, time: at, service: "core", name: "core", msg: "hello", ...fields };
}

describe("pretty log lines", () => {
  it("reads time, padded level, service, message, then fields", () => {
    assert.equal(
      formatRecord(record({ replId: "r-1", n: 3 }), plain),
      "03:04:05.006 INFO  core hello replId=r-1 n=3\n",
    );
    const names = [10, 20, 30, 40, 50, 60].map((level) => formatRecord(record({ level }), plain).slice(13, 19));
    assert.deepEqual(names, ["TRACE ", "DEBUG ", "INFO  ", "WARN  ", "ERROR ", "FATAL "]);
  });

  it("keeps a service field that differs from the name, and drops pino's pid and hostname", () => {
    const line = formatRecord(record({ service: "runner", pid: 7, hostname: "h" }), plain);
    assert.equal(line, "03:04:05.006 INFO  core hello service=runner\n");
  });

  it("quotes a string only when it would not read back bare", () => {
    const cases: Array<[unknown, string]> = [
      ["plain", "plain"],
      ["http://h:1/p?a", "http://h:1/p?a"],
      ["two words", '"two words"'],
      ['say "hi"', '"say \\"hi\\""'],
      ["it's", `"it's"`],
      ["a=b", '"a=b"'],
      ["", '""'],
      ["line\nbreak", '"line\\nbreak"'],
      [42, "42"],
      [false, "false"],
      [null, "null"],
      [{ a: { b: [1, "x y"] } }, '{"a":{"b":[1,"x y"]}}'],
    ];
    for (const [value, shown] of cases) assert.equal(formatValue(value), shown, JSON.stringify(value));
  });

  it("shows err as type and message, its stack only at error and above or when verbose", () => {
    const err = { type: "TypeError", message: "boom", stack, code: "EX" };
    const warn = formatRecord(record({ level: 40, err }), plain);
    assert.equal(warn, '03:04:05.006 WARN  core hello err="TypeError: boom" err.code=EX\n');
    const error = formatRecord(record({ level: 50, err }), plain);
    assert.equal(error, `${warn.replace("WARN ", "ERROR")}    at f (/app/a.ts:1:2)\n    at g (/app/b.ts:3:4)\n`);
    const verbose = formatRecord(record({ level: 40, err }), { colour: false, verbose: () => true });
    assert.match(verbose, /\n {4}at f \(\/app\/a\.ts:1:2\)\n {4}at g/);
    assert.equal(formatRecord(record({ err: "just text" }), plain), '03:04:05.006 INFO  core hello err="just text"\n');
  });

  it("escapes control characters, so a logged string can neither draw on the terminal nor forge a line", () => {
    const line = formatRecord(record({ msg: "x\x1b[2J\nINFO  forged", "k\x1b": "v\x9b1m", o: { s: "\x7f" } }), plain);
    assert.equal(line.split("\n").length, 2);
    for (const c of [ESC, "\x7f", "\x9b"]) assert.ok(!line.includes(c));
    assert.equal(
      line,
      String.raw`03:04:05.006 INFO  core x\u001b[2J\nINFO  forged k\u001b="v\u009b1m" o={"s":"\u007f"}` + "\n",
    );
  });

  it("colours only when asked", () => {
    const coloured = formatRecord(record({ level: 50 }), { colour: true, verbose: () => false });
    assert.ok(coloured.includes(`${ESC}[31mERROR${ESC}[0m`));
    assert.ok(!formatRecord(record({ level: 50 }), plain).includes(ESC));
  });

  it("passes a line that is not a JSON record through", () => {
    assert.equal(formatLines("not json\n", plain), "not json\n");
  });
});

describe("log format choice", () => {
  it("is pretty for a terminal, JSON otherwise, unless DEVEX_LOG_FORMAT says", () => {
    const cases: Array<[string | undefined, boolean, LogFormat]> = [
      [undefined, true, "pretty"],
      [undefined, false, "json"],
      ["", true, "pretty"],
      ["json", true, "json"],
      ["pretty", false, "pretty"],
    ];
    for (const [value, tty, want] of cases) assert.equal(logFormat({ DEVEX_LOG_FORMAT: value }, tty), want);
    assert.throws(() => logFormat({ DEVEX_LOG_FORMAT: "xml" }, true), /DEVEX_LOG_FORMAT must be json or pretty/);
  });

  it("keeps a given destination JSON, and redacts before formatting pretty lines", () => {
    const json = collect();
    const inherited = process.env.DEVEX_LOG_FORMAT;
    delete process.env.DEVEX_LOG_FORMAT;
    try {
      createLogger("t", { destination: json.stream }).info({ token: "s3cr3t" }, "hi");
    } finally {
      if (inherited !== undefined) process.env.DEVEX_LOG_FORMAT = inherited;
    }
    assert.equal(JSON.parse(json.text()).token, "[redacted]");

    const pretty = collect();
    const log = createLogger("t", { destination: pretty.stream, format: "pretty" });
    log.info(
      { headers: { authorization: "Bearer s3cr3t", "sec-websocket-protocol": "bearer.s3cr3t" }, token: "s3cr3t" },
      "request",
    );
    log.info({ req: { headers: { cookie: "sid=s3cr3t" } }, user: { accessToken: "s3cr3t" } }, "upgrade");
    const text = pretty.text();
    assert.doesNotMatch(text, /s3cr3t|\{"level"/);
    assert.match(
      text,
      / INFO {2}t request headers=\{"authorization":"\[redacted\]","sec-websocket-protocol":"\[redacted\]"\}/,
    );
    assert.match(text, / token=\[redacted\]\n/);
    assert.match(text, /req=\{"headers":\{"cookie":"\[redacted\]"\}\} user=\{"accessToken":"\[redacted\]"\}/);
  });
});

describe("log format of a real process", function () {
  this.timeout(60_000);
  let dir: string;
  let script: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "devex-log-"));
    script = join(dir, "log-once.mjs");
    const log = pathToFileURL(join(root, "lib/kit/log.ts")).href;
    const pino = pathToFileURL(createRequire(import.meta.url).resolve("pino")).href;
    // With the argument "stderr" it logs as the MCP stdio server does, keeping stdout for the protocol.
    await writeFile(
      script,
      `import { createLogger } from ${JSON.stringify(log)};\n` +
        `import { pino } from ${JSON.stringify(pino)};\n` +
        `const destination = process.argv[2] === "stderr" ? pino.destination(2) : undefined;\n` +
        `createLogger("logtest", { destination }).info({ port: 8080, token: "s3cr3t" }, "listening on http://127.0.0.1:8080");\n` +
        // node-pty can drop what a process wrote just before it exited (microsoft/node-pty#72).
        "setTimeout(() => {}, 300);\n",
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("writes pretty, coloured lines to a terminal", async () => {
    const out = await underPty(script, {});
    assert.doesNotMatch(out, /\{"level":|s3cr3t/);
    assert.ok(out.includes(`${ESC}[`));
    assert.match(
      stripAnsi(out),
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}logtest listening on http:\/\/127\.0\.0\.1:8080 port=8080 token=\[redacted\]\r?$/m,
    );
  });

  it("leaves colour out under NO_COLOR", async () => {
    const out = await underPty(script, { NO_COLOR: "1" });
    assert.match(out, /INFO {2}logtest listening on/);
    assert.ok(!out.includes(ESC));
  });

  it("writes JSON to a terminal under DEVEX_LOG_FORMAT=json", async () => {
    const out = await underPty(script, { DEVEX_LOG_FORMAT: "json" });
    const line = JSON.parse(out.trim());
    assert.equal(line.msg, "listening on http://127.0.0.1:8080");
    assert.equal(line.token, "[redacted]");
  });

  it("writes JSON to a pipe, and pretty lines there under DEVEX_LOG_FORMAT=pretty", async () => {
    const run = promisify(execFile);
    const piped = await run(process.execPath, ["--import", "tsx", script], { cwd: root, env: childEnv({}) });
    assert.equal(JSON.parse(piped.stdout).level, 30);
    const forced = await run(process.execPath, ["--import", "tsx", script], {
      cwd: root,
      env: childEnv({ DEVEX_LOG_FORMAT: "pretty" }),
    });
    assert.match(
      forced.stdout,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}logtest listening on http:\/\/127\.0\.0\.1:8080 port=8080/,
    );
    assert.ok(!forced.stdout.includes(ESC));
  });

  it("keeps a given destination JSON, and pretty under DEVEX_LOG_FORMAT=pretty, with stdout left clean", async () => {
    const run = promisify(execFile);
    const json = await run(process.execPath, ["--import", "tsx", script, "stderr"], { cwd: root, env: childEnv({}) });
    assert.equal(json.stdout, "");
    assert.equal(JSON.parse(json.stderr).token, "[redacted]");
    const forced = await run(process.execPath, ["--import", "tsx", script, "stderr"], {
      cwd: root,
      env: childEnv({ DEVEX_LOG_FORMAT: "pretty" }),
    });
    assert.equal(forced.stdout, "");
    assert.match(
      forced.stderr,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}logtest listening on \S+ port=8080 token=\[redacted\]\n$/,
    );
  });
});

/** The environment of a child, without the caller's log settings. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ["DEVEX_LOG_FORMAT", "DEVEX_LOG_LEVEL", "NO_COLOR"]) delete env[k];
  return { ...env, ...extra };
}

/** Everything `script` writes to a real PTY until it exits. */
function underPty(script: string, extra: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const pty = spawnPty(process.execPath, ["--import", "tsx", script], {
      name: "xterm",
      cols: 200,
      rows: 24,
      cwd: root,
      env: childEnv(extra) as Record<string, string>,
    });
    let out = "";
    pty.onData((d) => {
      out += d;
    });
    pty.onExit(({ exitCode }) => (exitCode === 0 ? resolve(out) : reject(new Error(`exit ${exitCode}: ${out}`))));
  });
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes.
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

function collect(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join("") };
}
