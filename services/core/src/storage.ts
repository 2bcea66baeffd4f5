/** The one place that picks the state store and blob store from config. */
import { join } from "node:path";
import { createLocalBlobStore } from "../../../lib/blob/local.js";
import { createS3BlobStore } from "../../../lib/blob/s3.js";
import type { BlobStore } from "../../../lib/blob/store.js";
import type { CoreConfig } from "./config.js";
import { createEmbeddedStore } from "./state/embedded.js";
import { createRedisStore } from "./state/redis.js";
import type { StateStore } from "./state/store.js";

export function openStateStore(config: CoreConfig): Promise<StateStore> {
  return config.REDIS_URL
    ? createRedisStore({ url: config.REDIS_URL })
    : createEmbeddedStore(join(config.DEVEX_DATA_DIR, "state"));
}

export function openBlobStore(config: CoreConfig): BlobStore {
  if (!config.DEVEX_S3_BUCKET) return createLocalBlobStore(join(config.DEVEX_DATA_DIR, "blobs"));
  return createS3BlobStore({
    bucket: config.DEVEX_S3_BUCKET,
    region: config.DEVEX_S3_REGION,
    endpoint: config.DEVEX_S3_ENDPOINT,
    forcePathStyle: config.DEVEX_S3_FORCE_PATH_STYLE,
    accessKeyId: config.DEVEX_S3_ACCESS_KEY_ID,
    secretAccessKey: config.DEVEX_S3_SECRET_ACCESS_KEY,
    prefix: config.DEVEX_S3_PREFIX,
  });
}
