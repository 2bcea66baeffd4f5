/**
 * The repls' egress policies as core stores them: the `egress` JSON field of the repl's record, the
 * hash replMeta:{replId} (services/core/src/state/redis.ts). Each answer is cached for at most
 * `maxAgeMs` (one second), so a SetEgressPolicy applies within it; concurrent lookups of one repl
 * share a read. A failed read is not cached and throws: the proxy then refuses (fails closed).
 */
import { Redis } from "ioredis";
import type { EgressPolicy } from "../../../lib/egress/policy.js";

export interface PolicySource {
  /** The repl's policy; undefined when no such repl exists. */
  get(replId: string): Promise<EgressPolicy | undefined>;
}

/** A Redis connection that fails fast instead of queueing while Redis is away (the proxy then answers 503). */
export function policyRedis(url: string, onError: (err: Error) => void = () => {}): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
  redis.on("error", onError);
  return redis;
}

export function redisPolicySource(
  redis: Pick<Redis, "hmget">,
  options: { fallback: EgressPolicy; maxAgeMs?: number; now?: () => number },
): PolicySource {
  const maxAgeMs = options.maxAgeMs ?? 1000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; policy: Promise<EgressPolicy | undefined> }>();
  const read = async (replId: string) => {
    const [id, egress] = await redis.hmget(`replMeta:${replId}`, "replId", "egress");
    if (!id) return undefined;
    return egress ? (JSON.parse(egress) as EgressPolicy) : options.fallback;
  };
  return {
    get(replId) {
      const t = now();
      const hit = cache.get(replId);
      if (hit && t - hit.at < maxAgeMs) return hit.policy;
      if (cache.size > 10_000) for (const [k, v] of cache) if (t - v.at >= maxAgeMs) cache.delete(k);
      const policy = read(replId);
      cache.set(replId, { at: t, policy });
      policy.catch(() => {
        if (cache.get(replId)?.policy === policy) cache.delete(replId);
      });
      return policy;
    },
  };
}
