/**
 * Templates on Redis: `template:{name}` holds the record as JSON, `templates:{owner}` the names of
 * one owner's templates ("templates:" the operator's). A name belongs to one owner: putting another
 * owner's name is refused, and the quota check and the insert are one script.
 */
import type { Connection, Methods } from "./redis.js";
import type { TemplateRecord } from "./store.js";

const PUT_TEMPLATE = `
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current).owner ~= ARGV[1] then return 'taken' end
local quota = tonumber(ARGV[2])
if not current and quota > 0 and redis.call('SCARD', KEYS[2]) >= quota then return 'over-quota' end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 'stored'`;

const DELETE_TEMPLATE = `
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current).owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1`;

export const templateScripts = { PUT_TEMPLATE, DELETE_TEMPLATE };

const nameKey = (name: string) => `template:${name}`;
const ownerKey = (owner: string) => `templates:${owner}`;

export function redisTemplateMethods({
  redis,
  script,
  guard,
}: Connection): Methods<"putTemplate" | "getTemplate" | "listTemplates" | "deleteTemplate"> {
  const read = (json: string | null) => (json ? (JSON.parse(json) as TemplateRecord) : undefined);
  return {
    putTemplate: (t, quota) =>
      guard(
        async () =>
          (await script.PUT_TEMPLATE(nameKey(t.name), ownerKey(t.owner), t.owner, quota, JSON.stringify(t), t.name)) as
            | "stored"
            | "over-quota"
            | "taken",
      ),
    getTemplate: (name) => guard(async () => read(await redis.get(nameKey(name)))),
    listTemplates: (owner) =>
      guard(async () => {
        const owners = owner === "" ? [""] : ["", owner];
        const names = (await Promise.all(owners.map((o) => redis.smembers(ownerKey(o))))).flat();
        if (names.length === 0) return [];
        const rows = await redis.mget(names.map(nameKey));
        return rows.map(read).filter((t): t is TemplateRecord => t !== undefined);
      }),
    deleteTemplate: (name, owner) =>
      guard(async () => (await script.DELETE_TEMPLATE(nameKey(name), ownerKey(owner), owner, name)) === 1),
  };
}
