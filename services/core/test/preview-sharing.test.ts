/** The preview sharing model (repl/preview-sharing.ts): per-port settings over a default, and when links are revoked. */
import assert from "node:assert/strict";
import { PRIVATE, visibilityOf, withVisibility } from "../src/repl/preview-sharing.js";

describe("preview sharing model", () => {
  it("a port's own visibility overrides the default; unsetting it follows the default again", () => {
    const s = withVisibility(withVisibility(PRIVATE, 0, "public"), 5432, "private");
    assert.equal(visibilityOf(s, 3000), "public");
    assert.equal(visibilityOf(s, 5432), "private");
    assert.equal(visibilityOf(withVisibility(s, 5432, undefined), 5432), "public");
    assert.equal(withVisibility(s, 0, undefined).visibility, "private", "port 0 unset resets the default to private");
  });

  it("revokes links (a new epoch) exactly when a shared preview becomes private", () => {
    const linked = withVisibility(PRIVATE, 3000, "link");
    assert.equal(linked.linkEpoch, 0);
    assert.equal(withVisibility(linked, 3000, "public").linkEpoch, 0, "link → public keeps links");
    assert.equal(withVisibility(linked, 3000, "private").linkEpoch, 1);
    assert.equal(withVisibility(linked, 3000, undefined).linkEpoch, 1, "back to a private default");
    const sharedDefault = withVisibility(PRIVATE, 0, "link");
    assert.equal(withVisibility(sharedDefault, 0, "private").linkEpoch, 1);
    assert.equal(withVisibility(sharedDefault, 8080, "private").linkEpoch, 1, "one port made private");
    assert.equal(withVisibility(PRIVATE, 8080, "private").linkEpoch, 0, "nothing was shared");
  });
});
