/**
 * StateStore on Redis (ioredis). Key layout (documented in services/core/README.md):
 *   replMeta:{replId}      hash   the repl record (its egress policy, preview sharing and environment, secrets sealed, as JSON fields)
 *   userRepls:{userId}     set    the user's repl ids
 *   activeSession:{replId} hash   the serving runner; PX TTL refreshed by heartbeats
 *   lock:{name}            string holder token; SET NX PX, released by compare-and-delete
 *   apiToken:{sha256}      hash   an API token record; PEXPIREAT at its expiry
 *   userTokens:{userId}    hash   tokenId → sha256
 *   user:{userId}          hash   profile
 *   webSession:{sha256}    hash   a browser session; PX TTL
 *   loginCode:{sha256}     hash   a one-time login link's user; PEXPIREAT, read and deleted in MULTI
 *   deviceGrant:{userCode} hash   a device login (RFC 8628); PEXPIREAT, decided by a Lua script
 *   replGone:{replId}      hash   why core deleted a repl on its own (owner, reason); PX TTL
 *   template:{name}        string a template record as JSON (redis-templates.ts)
 *   templates:{owner}      set    template names of one owner; "templates:" holds the operator's
 *   audit:all              stream every user's audit events; MAXLEN, MINID and PEXPIRE by retention (redis-audit.ts)
 *   audit:user:{userId}    stream one user's audit events, same ids as in audit:all; trimmed the same way
 * Multi-key updates run as Lua scripts or MULTI, so they are atomic. The offline queue is off: while
 * Redis is unreachable every call fails at once with Unavailable instead of piling up.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { EgressPolicy } from "../../../../lib/egress/policy.js";
import { DomainError, unavailable } from "../../../../lib/kit/errors.js";
import { redisAuditMethods } from "./redis-audit.js";
import { redisTemplateMethods, templateScripts } from "./redis-templates.js";
import type {
  ActiveSession,
  ApiTokenRecord,
  DeviceGrant,
  GitRecord,
  PreviewSharing,
  ReplRecord,
  ReplState,
  SetupRecord,
  StateStore,
  StoredVariable,
  UserRecord,
  WebSession,
} from "./store.js";

// One round trip for a user's repls, as one JSON string (cheaper to decode than nested RESP arrays).
// It reads keys it computes (not passed in KEYS): fine on a single or replicated Redis, not on Cluster.
const LIST_REPLS = `
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for i, id in ipairs(ids) do
  local h = redis.call('HGETALL', 'replMeta:' .. id)
  local t = {}
  for j = 1, #h, 2 do t[h[j]] = h[j + 1] end
  out[i] = t
end
if #out == 0 then return '[]' end
return cjson.encode(out)`;

const CREATE_REPL = `
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
return 1`;

const TRANSITION = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local n = tonumber(ARGV[1])
local ok = false
for i = 2, n + 1 do if ARGV[i] == status then ok = true end end
if not ok then return 0 end
if #ARGV > n + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 2)) end
return 1`;

const REFRESH_SESSION = `
if redis.call('HGET', KEYS[1], 'runnerId') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

const DELETE_SESSION = `
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'runnerId') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const TOUCH_TOKEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'lastUseTime', ARGV[1]) end
return 0`;

const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const DELETE_TOKEN = `
local hash = redis.call('HGET', KEYS[1], ARGV[1])
if not hash then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', 'apiToken:' .. hash)
return 1`;

// The setup's status is inside the JSON field: decoded and re-encoded here so the check and the
// change are one step.
const CLAIM_SETUP = `
local s = redis.call('HGET', KEYS[1], 'setup')
if not s then return 0 end
local o = cjson.decode(s)
if o.status ~= 'pending' then return 0 end
o.status = 'running'
redis.call('HSET', KEYS[1], 'setup', cjson.encode(o), 'updateTime', ARGV[1])
return 1`;

const DECIDE_DEVICE = `
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'userId', ARGV[2])
return 1`;

export interface RedisStoreOptions {
  url: string;
  /** Per-command timeout; defaults to 5 s. */
  commandTimeoutMs?: number;
}

/** A repl record or patch as hash fields: objects (egress policy, preview sharing) as JSON, absent values left out. */
const replFields = (o: Partial<ReplRecord>): string[] =>
  Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .flatMap(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]);

function toRepl(h: Record<string, string>): ReplRecord | undefined {
  if (!h.replId) return undefined;
  return {
    replId: h.replId,
    name: h.name,
    template: h.template,
    owner: h.owner,
    status: h.status as ReplState,
    createTime: Number(h.createTime),
    updateTime: Number(h.updateTime),
    persistTime: Number(h.persistTime || 0),
    lastError: h.lastError ?? "",
    // Records written before egress policies have none: the default applies when read.
    ...(h.egress ? { egress: JSON.parse(h.egress) as EgressPolicy } : {}),
    ...(h.previewSharing ? { previewSharing: JSON.parse(h.previewSharing) as PreviewSharing } : {}),
    ...(h.env ? { env: JSON.parse(h.env) as Record<string, StoredVariable> } : {}),
    ...(h.runCommand !== undefined ? { runCommand: h.runCommand } : {}),
    ...(h.previewPort ? { previewPort: Number(h.previewPort) } : {}),
    ...(h.setup ? { setup: JSON.parse(h.setup) as SetupRecord } : {}),
    ...(h.git ? { git: JSON.parse(h.git) as GitRecord } : {}),
  };
}

function toToken(h: Record<string, string>): ApiTokenRecord | undefined {
  if (!h.tokenId) return undefined;
  const t = {
    tokenId: h.tokenId,
    userId: h.userId,
    name: h.name,
    hash: h.hash,
    createTime: Number(h.createTime),
    expireTime: Number(h.expireTime || 0),
    lastUseTime: Number(h.lastUseTime || 0),
    ...(h.scopes ? { scopes: h.scopes.split(",") } : {}),
  };
  return t.expireTime && t.expireTime <= Date.now() ? undefined : t;
}

/** Connects and returns the store; fails with Unavailable when Redis cannot be reached. */
export async function createRedisStore(options: RedisStoreOptions): Promise<StateStore> {
  const c = connection(options);
  await c.guard(() => c.redis.connect());
  return {
    shared: true,
    ...replMethods(c),
    ...redisTemplateMethods(c),
    ...sessionMethods(c),
    ...lockMethods(c),
    ...tokenMethods(c),
    ...userMethods(c),
    ...deviceMethods(c),
    ...redisAuditMethods(c.redis, c.guard),
    firstSetting: (name, value) =>
      c.guard(async () => {
        const key = `setting:${name}`;
        const [, [, stored]] = (await c.redis.multi().set(key, value, "NX").get(key).exec()) as [
          unknown,
          [unknown, string],
        ];
        return stored;
      }),
    close: async () => {
      c.redis.disconnect();
    },
  };
}

/** The store's scripts, run by SHA (EVALSHA, loaded on first use) instead of resending their text each call. */
const scripts = {
  LIST_REPLS,
  CREATE_REPL,
  TRANSITION,
  REFRESH_SESSION,
  DELETE_SESSION,
  RELEASE_LOCK,
  RENEW_LOCK,
  DELETE_TOKEN,
  TOUCH_TOKEN,
  DECIDE_DEVICE,
  CLAIM_SETUP,
  ...templateScripts,
};

const TWO_KEY_SCRIPTS = new Set(["CREATE_REPL", "PUT_TEMPLATE", "DELETE_TEMPLATE"]);

export interface Connection {
  redis: Redis;
  script: Record<keyof typeof scripts, (...args: Array<string | number>) => Promise<unknown>>;
  /** Runs a call; a failure that is not a DomainError becomes Unavailable (no Redis text reaches a client). */
  guard<T>(fn: () => Promise<T>): Promise<T>;
}

function connection(options: RedisStoreOptions): Connection {
  const redis = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
  redis.on("error", () => {}); // connection errors surface on the calls; ioredis keeps reconnecting
  for (const [name, lua] of Object.entries(scripts)) {
    redis.defineCommand(name, { numberOfKeys: TWO_KEY_SCRIPTS.has(name) ? 2 : 1, lua });
  }
  const script = redis as unknown as Connection["script"];
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DomainError) throw e;
      throw unavailable("the state store (Redis) is unavailable, try again", e);
    }
  };
  return { redis, script, guard };
}

export type Methods<K extends keyof StateStore> = Pick<StateStore, K>;

function replMethods({
  redis,
  script,
  guard,
}: Connection): Methods<
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
  return {
    createRepl: (repl, quota) =>
      guard(async () => {
        const keys = [`replMeta:${repl.replId}`, `userRepls:${repl.owner}`];
        const r = await script.CREATE_REPL(...keys, quota, repl.replId, ...replFields(repl));
        if (r === -1) throw new Error(`repl id collision: ${repl.replId}`);
        return r === 1;
      }),
    getRepl: (replId) => guard(async () => toRepl(await redis.hgetall(`replMeta:${replId}`))),
    listRepls: (userId) =>
      guard(async () => {
        const rows = JSON.parse((await script.LIST_REPLS(`userRepls:${userId}`)) as string) as Record<string, string>[];
        const repls: ReplRecord[] = [];
        for (const h of rows) {
          const r = toRepl(h);
          if (r) repls.push(r);
        }
        return repls;
      }),
    countRepls: (userId) => guard(() => redis.scard(`userRepls:${userId}`)),
    transitionRepl: (replId, from, patch) =>
      guard(async () => {
        const ok = await script.TRANSITION(`replMeta:${replId}`, from.length, ...from, ...replFields(patch));
        return ok === 1 ? toRepl(await redis.hgetall(`replMeta:${replId}`)) : undefined;
      }),
    deleteRepl: (replId, owner) =>
      guard(async () => {
        await redis
          .multi()
          .del(`replMeta:${replId}`, `activeSession:${replId}`)
          .srem(`userRepls:${owner}`, replId)
          .exec();
      }),
    putReplTombstone: (t, ttlMs) =>
      guard(async () => {
        const key = `replGone:${t.replId}`;
        await redis.multi().del(key).hset(key, t).pexpire(key, ttlMs).exec();
      }),
    getReplTombstone: (replId) =>
      guard(async () => {
        const h = await redis.hgetall(`replGone:${replId}`);
        return h.replId ? { replId: h.replId, owner: h.owner, reason: h.reason } : undefined;
      }),
    claimSetup: (replId) =>
      guard(async () => {
        const ok = await script.CLAIM_SETUP(`replMeta:${replId}`, Date.now());
        return ok === 1 ? toRepl(await redis.hgetall(`replMeta:${replId}`)) : undefined;
      }),
  };
}

function sessionMethods({
  redis,
  script,
  guard,
}: Connection): Methods<"setActiveSession" | "getActiveSession" | "refreshActiveSession" | "deleteActiveSession"> {
  return {
    setActiveSession: (s, ttlMs) =>
      guard(async () => {
        const key = `activeSession:${s.replId}`;
        await redis.multi().del(key).hset(key, s).pexpire(key, ttlMs).exec();
      }),
    getActiveSession: (replId) =>
      guard(async () => {
        const h = await redis.hgetall(`activeSession:${replId}`);
        if (!h.runnerId) return undefined;
        return { replId: h.replId, runnerId: h.runnerId, url: h.url, startTime: Number(h.startTime) };
      }),
    refreshActiveSession: (replId, runnerId, ttlMs) =>
      guard(async () => (await script.REFRESH_SESSION(`activeSession:${replId}`, runnerId, ttlMs)) === 1),
    deleteActiveSession: (replId, runnerId) =>
      guard(async () => {
        await script.DELETE_SESSION(`activeSession:${replId}`, runnerId ?? "");
      }),
  };
}

function lockMethods({ redis, script, guard }: Connection): Methods<"acquireLock" | "renewLock" | "releaseLock"> {
  return {
    acquireLock: (name, ttlMs) =>
      guard(async () => {
        const token = randomBytes(16).toString("hex");
        const ok = await redis.set(`lock:${name}`, token, "PX", ttlMs, "NX");
        return ok === "OK" ? token : undefined;
      }),
    renewLock: (name, token, ttlMs) => guard(async () => (await script.RENEW_LOCK(`lock:${name}`, token, ttlMs)) === 1),
    releaseLock: (name, token) =>
      guard(async () => {
        await script.RELEASE_LOCK(`lock:${name}`, token);
      }),
  };
}

function tokenMethods({
  redis,
  script,
  guard,
}: Connection): Methods<"putApiToken" | "getApiTokenByHash" | "listApiTokens" | "deleteApiToken" | "touchApiToken"> {
  return {
    putApiToken: (t) =>
      guard(async () => {
        const key = `apiToken:${t.hash}`;
        const { scopes, ...fields } = t;
        const record = scopes?.length ? { ...fields, scopes: scopes.join(",") } : fields;
        const m = redis.multi().hset(key, record).hset(`userTokens:${t.userId}`, t.tokenId, t.hash);
        if (t.expireTime) m.pexpireat(key, t.expireTime);
        await m.exec();
      }),
    getApiTokenByHash: (hash) => guard(async () => toToken(await redis.hgetall(`apiToken:${hash}`))),
    listApiTokens: (userId) =>
      guard(async () => {
        const byId = await redis.hgetall(`userTokens:${userId}`);
        const hashes = Object.values(byId);
        if (hashes.length === 0) return [];
        const pipe = redis.pipeline();
        for (const h of hashes) pipe.hgetall(`apiToken:${h}`);
        const out: ApiTokenRecord[] = [];
        const stale: string[] = [];
        for (const [i, [err, h]] of ((await pipe.exec()) ?? []).entries()) {
          if (err) throw err;
          const t = toToken(h as Record<string, string>);
          if (t) out.push(t);
          else stale.push(Object.keys(byId)[i]);
        }
        if (stale.length) await redis.hdel(`userTokens:${userId}`, ...stale);
        return out;
      }),
    deleteApiToken: (userId, tokenId) =>
      guard(async () => (await script.DELETE_TOKEN(`userTokens:${userId}`, tokenId)) === 1),
    touchApiToken: (hash, time) =>
      guard(async () => {
        // Only an existing token is touched; HSET on a vanished key would resurrect a fragment.
        await script.TOUCH_TOKEN(`apiToken:${hash}`, time);
      }),
  };
}

function userMethods({
  redis,
  guard,
}: Connection): Methods<
  "putUser" | "getUser" | "putWebSession" | "getWebSession" | "deleteWebSession" | "putLoginCode" | "takeLoginCode"
> {
  return {
    putUser: (u) =>
      guard(async () => {
        // The record whole, as the embedded store keeps it: a put without a grant leaves none from before.
        const fields = Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined));
        const results = await redis.multi().del(`user:${u.userId}`).hset(`user:${u.userId}`, fields).exec();
        const failed = results?.find(([err]) => err)?.[0];
        if (failed) throw failed;
      }),
    getUser: (userId) =>
      guard(async () => {
        const h = await redis.hgetall(`user:${userId}`);
        if (!h.userId) return undefined;
        return {
          userId: h.userId,
          displayName: h.displayName,
          avatarUrl: h.avatarUrl,
          ...(h.github ? { github: h.github } : {}),
        };
      }),

    putWebSession: (hash, s) =>
      guard(async () => {
        const key = `webSession:${hash}`;
        await redis.multi().hset(key, s).pexpireat(key, s.expireTime).exec();
      }),
    getWebSession: (hash) =>
      guard(async () => {
        const h = await redis.hgetall(`webSession:${hash}`);
        if (!h.userId || Number(h.expireTime) <= Date.now()) return undefined;
        return { userId: h.userId, createTime: Number(h.createTime), expireTime: Number(h.expireTime) };
      }),
    deleteWebSession: (hash) =>
      guard(async () => {
        await redis.del(`webSession:${hash}`);
      }),
    putLoginCode: (hash, c) =>
      guard(async () => {
        const key = `loginCode:${hash}`;
        await redis.multi().hset(key, c).pexpireat(key, c.expireTime).exec();
      }),
    takeLoginCode: (hash) =>
      guard(async () => {
        // Read and delete in one transaction: of two cores redeeming the same code, one gets it.
        const key = `loginCode:${hash}`;
        const [[, h]] = (await redis.multi().hgetall(key).del(key).exec()) as [[unknown, Record<string, string>]];
        if (!h?.userId || Number(h.expireTime) <= Date.now()) return undefined;
        return { userId: h.userId, expireTime: Number(h.expireTime) };
      }),
  };
}

function deviceMethods({
  redis,
  script,
  guard,
}: Connection): Methods<"putDeviceGrant" | "getDeviceGrant" | "decideDeviceGrant" | "deleteDeviceGrant"> {
  const key = (userCode: string) => `deviceGrant:${userCode}`;
  return {
    putDeviceGrant: (g) =>
      guard(async () => {
        const fields = Object.entries({ ...g, scopes: g.scopes?.join(",") || undefined }).filter(
          ([, v]) => v !== undefined,
        );
        await redis
          .multi()
          .hset(key(g.userCode), Object.fromEntries(fields))
          .pexpireat(key(g.userCode), g.expireTime)
          .exec();
      }),
    getDeviceGrant: (userCode) =>
      guard(async () => {
        const h = await redis.hgetall(key(userCode));
        if (!h.deviceHash || Number(h.expireTime) <= Date.now()) return undefined;
        const grant: DeviceGrant = {
          userCode,
          deviceHash: h.deviceHash,
          clientName: h.clientName ?? "",
          createTime: Number(h.createTime),
          expireTime: Number(h.expireTime),
          status: h.status as DeviceGrant["status"],
        };
        if (h.userId) grant.userId = h.userId;
        if (h.scopes) grant.scopes = h.scopes.split(",");
        return grant;
      }),
    decideDeviceGrant: (userCode, d) =>
      guard(
        async () =>
          (await script.DECIDE_DEVICE(key(userCode), d.status, d.status === "approved" ? d.userId : "")) === 1,
      ),
    deleteDeviceGrant: (userCode) => guard(async () => (await redis.del(key(userCode))) === 1),
  };
}

export type { ActiveSession, UserRecord, WebSession };
