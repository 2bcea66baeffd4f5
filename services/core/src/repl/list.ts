/** ListRepls: the caller's repls, newest first, paged with an opaque cursor. */
import { invalidArgument } from "../../../../lib/kit/errors.js";
import type { ReplRecord } from "../state/store.js";
import { effective } from "./common.js";
import type { ReplDeps } from "./deps.js";

const DEFAULT_PAGE_SIZE = 50;

const newestFirst = (a: ReplRecord, b: ReplRecord) =>
  b.createTime - a.createTime || (a.replId < b.replId ? -1 : a.replId > b.replId ? 1 : 0);

function decodeCursor(token: string): { createTime: number; replId: string } {
  try {
    const [createTime, replId] = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (typeof createTime === "number" && typeof replId === "string") return { createTime, replId };
  } catch {}
  throw invalidArgument("page_token is not a token from a previous ListRepls response");
}

export async function listRepls(
  deps: ReplDeps,
  userId: string,
  page: { pageSize: number; pageToken: string },
): Promise<{ repls: ReplRecord[]; nextPageToken: string }> {
  const size = page.pageSize || DEFAULT_PAGE_SIZE;
  let repls = (await deps.state.listRepls(userId)).sort(newestFirst);
  if (page.pageToken) {
    const cursor = decodeCursor(page.pageToken);
    repls = repls.filter((r) => newestFirst(r, { ...r, ...cursor }) > 0);
  }
  const slice = repls.slice(0, size);
  const last = slice[slice.length - 1];
  const nextPageToken =
    repls.length > size ? Buffer.from(JSON.stringify([last.createTime, last.replId])).toString("base64url") : "";
  return { repls: await Promise.all(slice.map((r) => effective(deps, r))), nextPageToken };
}
