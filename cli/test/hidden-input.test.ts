import assert from "node:assert/strict";
import { typeInto } from "../src/hidden-input.js";

describe("typeInto (a secret typed without echo)", () => {
  it("keeps printable text, Enter (or Ctrl-D) ends the line, Ctrl-C cancels it", () => {
    assert.deepEqual(typeInto("", "s3cr"), { value: "s3cr" });
    assert.deepEqual(typeInto("s3cr", "et\r"), { value: "s3cret", end: "enter" });
    assert.deepEqual(typeInto("", "pasted\r\nrest"), { value: "pasted", end: "enter" });
    assert.deepEqual(typeInto("abc", "\x04"), { value: "abc", end: "enter" });
    assert.deepEqual(typeInto("abc", "d\x03"), { value: "", end: "cancel" });
  });

  it("Backspace removes one character (a whole emoji), Ctrl-U the line; arrows and other controls are dropped", () => {
    assert.deepEqual(typeInto("pa😀", "\x7f"), { value: "pa" });
    assert.deepEqual(typeInto("pa", "\b\b\b"), { value: "" });
    assert.deepEqual(typeInto("typo", "\x15ok"), { value: "ok" });
    assert.deepEqual(typeInto("a", "\x1b[D\x1bOA\x1b[3~b\t\x00c"), { value: "abc" });
  });
});
