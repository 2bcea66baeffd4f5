/**
 * StateStore for the embedded single-process setup (no REDIS_URL). Everything lives in memory and
 * every change is written to `<dir>/state.json` before the call returns (temp file + rename, so a
 * crash leaves the previous or the new snapshot, never a torn one). Methods run their read-check-
 * write synchronously between awaits, which makes each one atomic within the process. Only one
 * process may use a given directory. The audit log is appended to its own file (embedded-audit.ts).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { unavailable } from "../../../../lib/kit/errors.js";
import { replaceFile } from "../../../../lib/kit/replace-file.js";
import { openEmbeddedAuditLog } from "./embedded-audit.js";
import type {
  ActiveSession,
  ApiTokenRecord,
  DeviceGrant,
  LoginCode,
  ReplRecord,
  ReplTombstone,
  StateStore,
  TemplateRecord,
  UserRecord,
  WebSession,
} from "./store.js";

interface Snapshot {
  repls: Record<string, ReplRecord>;
  sessions: Record<string, ActiveSession & { expiresAt: number }>;
  tokens: Record<string, ApiTokenRecord>;
  users: Record<string, UserRecord>;
  webSessions: Record<string, WebSession>;
  loginCodes: Record<string, LoginCode>;
  deviceGrants: Record<string, DeviceGrant>;
  settings: Record<string, string>;
  templates: Record<string, TemplateRecord>;
  tombstones: Record<string, ReplTombstone & { expiresAt: number }>;
}

const empty = (): Snapshot => ({
  repls: {},
  sessions: {},
  tokens: {},
  users: {},
  webSessions: {},
  loginCodes: {},
  deviceGrants: {},
  settings: {},
  templates: {},
  tombstones: {},
});

export async function createEmbeddedStore(dir: string): Promise<StateStore> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, "state.json");
  let data = empty();
  try {
    data = { ...empty(), ...JSON.parse(await readFile(file, "utf8")) };
    await chmod(file, 0o600); // written with the umask's mode before
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const state = snapshotWriter(file, data);
  const audit = await openEmbeddedAuditLog(dir);
  return {
    shared: false,
    ...replMethods(state),
    ...templateMethods(state),
    ...sessionMethods(state),
    ...lockMethods(),
    ...tokenMethods(state),
    ...userMethods(state),
    ...deviceMethods(state),
    async firstSetting(name, value) {
      if (data.settings[name] === undefined) {
        data.settings[name] = value;
        await state.save();
      }
      return data.settings[name];
    },
    appendAuditEvents: audit.appendAuditEvents,
    listAuditEvents: audit.listAuditEvents,
    async close() {
      await Promise.all([state.written(), audit.close()]);
    },
  };
}

/** The snapshot and its writer: `save` resolves once a write that includes every change so far landed. */
interface SavedSnapshot {
  data: Snapshot;
  save(): Promise<void>;
  /** The last write, settled. */
  written(): Promise<void>;
}

function snapshotWriter(file: string, data: Snapshot): SavedSnapshot {
  // Writes are chained so snapshots land in order; each caller waits for a write that includes its change.
  let writing: Promise<void> = Promise.resolve();
  const save = (): Promise<void> => {
    writing = writing.then(async () => {
      try {
        // Token hashes, sessions, sealed secrets: core's user only.
        await replaceFile(file, JSON.stringify(data), { mode: 0o600 });
      } catch (e) {
        throw unavailable("the state store cannot write its data directory", e);
      }
    });
    const mine = writing;
    writing = writing.catch(() => {});
    return mine;
  };
  return { data, save, written: () => writing };
}

type Methods<K extends keyof StateStore> = Pick<StateStore, K>;

function replMethods({
  data,
  save,
}: SavedSnapshot): Methods<
  | "createRepl"
  | "getRepl"
  | "listRepls"
  | "countRepls"
  | "transitionRepl"
  | "deleteRepl"
  | "claimSetup"
  | "putReplTombstone"
  | "getReplTombstone"
> {
  const userRepls = (userId: string) => Object.values(data.repls).filter((r) => r.owner === userId);
  // Deep copies: a record holds objects (its egress policy, preview sharing) that callers must not share with the store.
  const copy = <T>(r: T): T => structuredClone(r);
  return {
    async createRepl(repl, quota) {
      if (userRepls(repl.owner).length >= quota) return false;
      if (data.repls[repl.replId]) throw new Error(`repl id collision: ${repl.replId}`);
      data.repls[repl.replId] = copy(repl);
      await save();
      return true;
    },
    async getRepl(replId) {
      const r = data.repls[replId];
      return r && copy(r);
    },
    async listRepls(userId) {
      return userRepls(userId).map(copy);
    },
    async countRepls(userId) {
      return userRepls(userId).length;
    },
    async transitionRepl(replId, from, patch) {
      const r = data.repls[replId];
      if (!r || !from.includes(r.status)) return undefined;
      Object.assign(r, copy(patch));
      const updated = copy(r);
      await save();
      return updated;
    },
    async deleteRepl(replId) {
      delete data.repls[replId];
      delete data.sessions[replId];
      await save();
    },
    async putReplTombstone(t, ttlMs) {
      const now = Date.now();
      for (const [id, old] of Object.entries(data.tombstones)) if (old.expiresAt <= now) delete data.tombstones[id];
      data.tombstones[t.replId] = { ...t, expiresAt: now + ttlMs };
      await save();
    },
    async getReplTombstone(replId) {
      const t = data.tombstones[replId];
      if (!t || t.expiresAt <= Date.now()) return undefined;
      const { expiresAt: _, ...tombstone } = t;
      return tombstone;
    },
    async claimSetup(replId) {
      const r = data.repls[replId];
      if (r?.setup?.status !== "pending") return undefined;
      r.setup.status = "running";
      r.updateTime = Date.now();
      const updated = copy(r);
      await save();
      return updated;
    },
  };
}

function templateMethods({
  data,
  save,
}: SavedSnapshot): Methods<"putTemplate" | "getTemplate" | "listTemplates" | "deleteTemplate"> {
  const copy = <T>(t: T): T => structuredClone(t);
  return {
    async putTemplate(t, quota) {
      const current = data.templates[t.name];
      if (current && current.owner !== t.owner) return "taken";
      const owned = Object.values(data.templates).filter((x) => x.owner === t.owner).length;
      if (!current && quota > 0 && owned >= quota) return "over-quota";
      data.templates[t.name] = copy(t);
      await save();
      return "stored";
    },
    async getTemplate(name) {
      const t = data.templates[name];
      return t && copy(t);
    },
    async listTemplates(owner) {
      return Object.values(data.templates)
        .filter((t) => t.owner === "" || t.owner === owner)
        .map(copy);
    },
    async deleteTemplate(name, owner) {
      if (data.templates[name]?.owner !== owner) return false;
      delete data.templates[name];
      await save();
      return true;
    },
  };
}

function sessionMethods({
  data,
  save,
}: SavedSnapshot): Methods<"setActiveSession" | "getActiveSession" | "refreshActiveSession" | "deleteActiveSession"> {
  const liveSession = (replId: string) => {
    const s = data.sessions[replId];
    if (s && s.expiresAt <= Date.now()) delete data.sessions[replId];
    return data.sessions[replId];
  };
  return {
    async setActiveSession(s, ttlMs) {
      data.sessions[s.replId] = { ...s, expiresAt: Date.now() + ttlMs };
      await save();
    },
    async getActiveSession(replId) {
      const s = liveSession(replId);
      if (!s) return undefined;
      const { expiresAt: _, ...session } = s;
      return session;
    },
    async refreshActiveSession(replId, runnerId, ttlMs) {
      const s = liveSession(replId);
      if (!s || s.runnerId !== runnerId) return false;
      s.expiresAt = Date.now() + ttlMs;
      await save();
      return true;
    },
    async deleteActiveSession(replId, runnerId) {
      const s = data.sessions[replId];
      if (!s || (runnerId !== undefined && s.runnerId !== runnerId)) return;
      delete data.sessions[replId];
      await save();
    },
  };
}

/** Locks are not persisted: only one process uses the directory, and a restart holds none. */
function lockMethods(): Methods<"acquireLock" | "renewLock" | "releaseLock"> {
  const locks = new Map<string, { token: string; expiresAt: number }>();
  return {
    async acquireLock(name, ttlMs) {
      const held = locks.get(name);
      if (held && held.expiresAt > Date.now()) return undefined;
      const token = randomBytes(16).toString("hex");
      locks.set(name, { token, expiresAt: Date.now() + ttlMs });
      return token;
    },
    async renewLock(name, token, ttlMs) {
      const held = locks.get(name);
      if (!held || held.token !== token || held.expiresAt <= Date.now()) return false;
      held.expiresAt = Date.now() + ttlMs;
      return true;
    },
    async releaseLock(name, token) {
      if (locks.get(name)?.token === token) locks.delete(name);
    },
  };
}

function tokenMethods({
  data,
  save,
}: SavedSnapshot): Methods<"putApiToken" | "getApiTokenByHash" | "listApiTokens" | "deleteApiToken" | "touchApiToken"> {
  const liveToken = (hash: string) => {
    const t = data.tokens[hash];
    return t && (!t.expireTime || t.expireTime > Date.now()) ? t : undefined;
  };
  return {
    async putApiToken(t) {
      data.tokens[t.hash] = { ...t };
      await save();
    },
    async getApiTokenByHash(hash) {
      const t = liveToken(hash);
      return t && { ...t };
    },
    async listApiTokens(userId) {
      return Object.values(data.tokens)
        .filter((t) => t.userId === userId && liveToken(t.hash))
        .map((t) => ({ ...t }));
    },
    async deleteApiToken(userId, tokenId) {
      const t = Object.values(data.tokens).find((x) => x.userId === userId && x.tokenId === tokenId);
      if (!t) return false;
      delete data.tokens[t.hash];
      await save();
      return true;
    },
    async touchApiToken(hash, time) {
      const t = data.tokens[hash];
      if (!t) return;
      t.lastUseTime = time;
      await save();
    },
  };
}

function userMethods({
  data,
  save,
}: SavedSnapshot): Methods<
  "putUser" | "getUser" | "putWebSession" | "getWebSession" | "deleteWebSession" | "putLoginCode" | "takeLoginCode"
> {
  return {
    async putUser(u) {
      data.users[u.userId] = { ...u };
      await save();
    },
    async getUser(userId) {
      const u = data.users[userId];
      return u && { ...u };
    },

    async putWebSession(hash, s) {
      data.webSessions[hash] = { ...s };
      await save();
    },
    async getWebSession(hash) {
      const s = data.webSessions[hash];
      if (!s) return undefined;
      if (s.expireTime <= Date.now()) {
        delete data.webSessions[hash];
        return undefined;
      }
      return { ...s };
    },
    async deleteWebSession(hash) {
      delete data.webSessions[hash];
      await save();
    },

    async putLoginCode(hash, code) {
      const now = Date.now();
      for (const [h, c] of Object.entries(data.loginCodes)) if (c.expireTime <= now) delete data.loginCodes[h];
      data.loginCodes[hash] = { ...code };
      await save();
    },
    async takeLoginCode(hash) {
      const code = data.loginCodes[hash];
      if (!code) return undefined;
      delete data.loginCodes[hash];
      await save();
      return code.expireTime > Date.now() ? { ...code } : undefined;
    },
  };
}

function deviceMethods({
  data,
  save,
}: SavedSnapshot): Methods<"putDeviceGrant" | "getDeviceGrant" | "decideDeviceGrant" | "deleteDeviceGrant"> {
  const live = (userCode: string) => {
    const g = data.deviceGrants[userCode];
    return g && g.expireTime > Date.now() ? g : undefined;
  };
  return {
    async putDeviceGrant(g) {
      const now = Date.now();
      for (const [code, old] of Object.entries(data.deviceGrants))
        if (old.expireTime <= now) delete data.deviceGrants[code];
      data.deviceGrants[g.userCode] = { ...g };
      await save();
    },
    async getDeviceGrant(userCode) {
      const g = live(userCode);
      return g && { ...g };
    },
    async decideDeviceGrant(userCode, decision) {
      const g = live(userCode);
      if (g?.status !== "pending") return false;
      g.status = decision.status;
      if (decision.status === "approved") g.userId = decision.userId;
      await save();
      return true;
    },
    async deleteDeviceGrant(userCode) {
      if (!data.deviceGrants[userCode]) return false;
      delete data.deviceGrants[userCode];
      await save();
      return true;
    },
  };
}
