/**
 * A repl's environment variables and secrets: stored on the repl (a secret sealed with the
 * operator's key, secret-box.ts, bound to its repl and name), streamed decrypted to the repl's
 * runner (runnercontrol/environment.ts), which gives them to every terminal, command and process it
 * starts. A secret's value leaves core only that way: no read API returns it, no log line holds it.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type EnvironmentVariable, EnvironmentVariableSchema } from "../../../../gen/devex/core/v1/repl_pb.js";
import { ENV_LIMITS, isReservedEnvironmentName } from "../../../../lib/contracts/environment-names.js";
import { invalidArgument, resourceExhausted } from "../../../../lib/kit/errors.js";
import type { ReplRecord, StateStore, StoredVariable } from "../state/store.js";
import type { ReplDeps } from "./deps.js";
import type { SecretBox } from "./secret-box.js";
import { changeSetting } from "./settings.js";

function checkName(name: string) {
  if (isReservedEnvironmentName(name)) {
    throw invalidArgument(`${name} is set by the repl itself (as are DEVEX_* names): choose another name`);
  }
}

/** A value's bytes: a secret's are its ciphertext's, as many as its plain value's under GCM. */
function valueBytes(v: StoredVariable): number {
  if (v.sealed === undefined) return Buffer.byteLength(v.value ?? "");
  return Buffer.from(v.sealed.split(".")[2] ?? "", "base64url").length;
}

/** What a sealed value is bound to: moved onto another repl or name, it does not open. */
export const sealContext = (replId: string, name: string) => `devex.env.v1\0${replId}\0${name}`;

export function variablesToProto(r: ReplRecord): EnvironmentVariable[] {
  return Object.entries(r.env ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, v]) =>
      create(EnvironmentVariableSchema, {
        name,
        value: v.sealed === undefined ? (v.value ?? "") : "",
        secret: v.sealed !== undefined,
        updateTime: timestampFromMs(v.updateTime),
      }),
    );
}

/** The variables as processes get them: secrets opened. One that no longer opens (the key changed) is left out, by name in the log. */
export function plainEnvironment(deps: ReplDeps, r: ReplRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(r.env ?? {})) {
    if (v.sealed === undefined) out[name] = v.value ?? "";
    else {
      try {
        out[name] = deps.secrets.open(v.sealed, sealContext(r.replId, name));
      } catch {
        deps.log.warn(
          { replId: r.replId, name },
          "a secret does not open with this core's key (DEVEX_SECRETS_KEY); left out",
        );
      }
    }
  }
  return out;
}

export function setEnvironmentVariable(
  deps: ReplDeps,
  userId: string,
  req: { replId: string; name: string; value: string; secret: boolean },
  signal: AbortSignal,
): Promise<ReplRecord> {
  checkName(req.name);
  const stored: StoredVariable = req.secret
    ? { sealed: deps.secrets.seal(req.value, sealContext(req.replId, req.name)), updateTime: Date.now() }
    : { value: req.value, updateTime: Date.now() };
  return changeSetting(deps, userId, req.replId, signal, (current) => {
    const env = { ...current.env, [req.name]: stored };
    if (Object.keys(env).length > ENV_LIMITS.count) {
      throw resourceExhausted(`a repl has at most ${ENV_LIMITS.count} environment variables: delete one first`);
    }
    const bytes = Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + valueBytes(v), 0);
    if (bytes > ENV_LIMITS.totalBytes) {
      throw resourceExhausted(`a repl's environment variables hold at most ${ENV_LIMITS.totalBytes / 1024} KiB in all`);
    }
    return { env };
  });
}

export function deleteEnvironmentVariable(
  deps: ReplDeps,
  userId: string,
  req: { replId: string; name: string },
  signal: AbortSignal,
): Promise<ReplRecord> {
  return changeSetting(deps, userId, req.replId, signal, (current) => {
    const env = { ...current.env };
    delete env[req.name];
    return { env };
  });
}

const KEY_CHECK = "secrets-key-check";

/**
 * Every core sharing a state store must seal and open secrets with the same key: the first core to
 * start stores a value sealed with its key, and a core whose key does not open it refuses to start
 * (rather than leave every secret sealed by the others out of its repls' environments).
 */
export async function checkSecretsKey(state: StateStore, secrets: SecretBox): Promise<void> {
  const sealed = await state.firstSetting(KEY_CHECK, secrets.seal("devex", KEY_CHECK));
  try {
    secrets.open(sealed, KEY_CHECK);
  } catch {
    throw new Error(
      "this core's secrets key (DEVEX_SECRETS_KEY, or the data directory's secrets-key) is not the one the state store's secrets were sealed with: give every core the same DEVEX_SECRETS_KEY",
    );
  }
}
