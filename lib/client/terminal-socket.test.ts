import assert from "node:assert/strict";
import { RunnerRoute } from "../contracts/runner-access.js";
import { type TerminalSocketOptions, terminalSocketUrl } from "./terminal-socket.js";

describe("terminalSocketUrl: the runner's terminal WebSocket bridge from RunnerAccess", () => {
  const cases: [string, { url: string; websocketPath: string }, string, TerminalSocketOptions, string][] = [
    [
      "http becomes ws; a reattach asks for the replay at the client's size",
      { url: "http://127.0.0.1:8080/r1", websocketPath: "/ws/terminals/" },
      "t1",
      { replay: true, cols: 120, rows: 40 },
      "ws://127.0.0.1:8080/r1/ws/terminals/t1?replay=1&cols=120&rows=40",
    ],
    [
      "https becomes wss; a new terminal needs neither replay nor size",
      { url: "https://devex.example/r1/", websocketPath: "/ws/terminals" },
      "t2",
      {},
      "wss://devex.example/r1/ws/terminals/t2?",
    ],
    [
      "replay with a size, another websocket_path",
      { url: "http://h", websocketPath: "/bridge/" },
      "t3",
      { replay: true, cols: 80, rows: 24 },
      "ws://h/bridge/t3?replay=1&cols=80&rows=24",
    ],
    [
      "no replay when false; a half size is not sent",
      { url: "http://h", websocketPath: "/ws/terminals/" },
      "t4",
      { replay: false, cols: 80 },
      "ws://h/ws/terminals/t4?",
    ],
    [
      "an empty websocket_path falls back to the runner's route",
      { url: "http://h//", websocketPath: "" },
      "t5",
      { replay: true },
      `ws://h${RunnerRoute.terminalSocket}t5?replay=1`,
    ],
    [
      "the terminal id is one path segment, escaped",
      { url: "http://h", websocketPath: "/ws/terminals/" },
      "a/../b?c",
      {},
      "ws://h/ws/terminals/a%2F..%2Fb%3Fc?",
    ],
  ];
  for (const [what, access, terminalId, options, expected] of cases) {
    it(what, () => {
      assert.equal(terminalSocketUrl(access, terminalId, options), expected);
    });
  }
});
