/**
 * Developer commands for running a runner without core:
 *
 *   node dist/runner/cli.mjs keygen [--out <dir>]
 *       Writes token-signing.pem (private) and token-signing.pub.pem (public) into <dir> (default .).
 *   node dist/runner/cli.mjs mint --key <private.pem> --repl <id> [--user <u>] [--ttl 1h]
 *       [--aud runner|runner-admin] [--scope files,terminals,exec,preview]
 *       Prints an access token for that repl.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../../../lib/kit/config.js";
import { type Audience, createTokenSigner, generateSigningKey } from "../../../lib/kit/tokens.js";

const [command, ...rest] = process.argv.slice(2);

function usage(): never {
  console.error(
    "usage:\n  cli.ts keygen [--out <dir>]\n  cli.ts mint --key <private.pem> --repl <id> [--user <u>] [--ttl 1h] [--aud runner|runner-admin] [--scope files,terminals,exec,preview]",
  );
  process.exit(2);
}

if (command === "keygen") {
  const { values } = parseArgs({ args: rest, options: { out: { type: "string", default: "." } } });
  const { privateKeyPem, publicKeyPem } = generateSigningKey();
  const priv = path.join(values.out!, "token-signing.pem");
  const pub = path.join(values.out!, "token-signing.pub.pem");
  writeFileSync(priv, privateKeyPem, { mode: 0o600 });
  writeFileSync(pub, publicKeyPem);
  console.log(`wrote ${priv} (keep it secret) and ${pub} (give it to the runner as DEVEX_TOKEN_PUBLIC_KEY_FILE)`);
} else if (command === "mint") {
  const { values } = parseArgs({
    args: rest,
    options: {
      key: { type: "string" },
      repl: { type: "string" },
      user: { type: "string", default: "dev" },
      ttl: { type: "string", default: "1h" },
      aud: { type: "string", default: "runner" },
      scope: { type: "string", default: "files,terminals,exec,preview" },
    },
  });
  if (!values.key || !values.repl) usage();
  const ttlMs = parseDuration(values.ttl!);
  if (!ttlMs) usage();
  const signer = createTokenSigner(readFileSync(values.key, "utf8"));
  const token = signer.mint(
    { aud: values.aud as Audience, sub: values.user!, repl: values.repl, scope: values.scope!.split(",") },
    Math.ceil(ttlMs / 1000),
  );
  console.log(token);
} else {
  usage();
}
