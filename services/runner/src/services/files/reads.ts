/** FileService's reads: listing, stat, byte ranges, search and the watch stream. */
import { open } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type FileInfo,
  type FileService,
  ListFilesResponseSchema,
  ReadFileResponseSchema,
  SearchFilesResponseSchema,
  SearchMatchSchema,
  StatFileResponseSchema,
  WatchFilesResponseSchema,
} from "../../../../../gen/devex/runner/v1/file_pb.js";
import { failedPrecondition, invalidArgument, resourceExhausted } from "../../../../../lib/kit/errors.js";
import { formatBytes } from "../../config.js";
import { READ_FLAGS } from "../../workspace/confined-fs.js";
import { infoFromStats, lstatInfo } from "../../workspace/file-info.js";
import { searchFiles } from "../../workspace/search.js";
import { walk } from "../../workspace/walk.js";
import { watchBatches } from "../../workspace/watch.js";
import { ENTRY, type FileServiceDeps, TARGET } from "./deps.js";

const DEFAULT_LIST_ENTRIES = 1000;
const DEFAULT_SEARCH_RESULTS = 200;

type Reads = Pick<
  ServiceImpl<typeof FileService>,
  "listFiles" | "statFile" | "readFile" | "searchFiles" | "watchFiles"
>;

export function fileReads({ workspace: ws, maxFileRead }: FileServiceDeps): Reads {
  return {
    async listFiles(req) {
      return ws.at(req.path, TARGET, async (loc) => {
        const max = req.maxEntries || DEFAULT_LIST_ENTRIES;
        const entries: FileInfo[] = [];
        const options = { maxDepth: req.depth || 1, exclude: req.exclude, includeHidden: req.includeHidden };
        try {
          for await (const e of walk(loc.path, loc.rel, options)) {
            if (entries.length >= max) return create(ListFilesResponseSchema, { entries, truncated: true });
            entries.push(await infoFromStats(e.abs, e.rel, e.stats));
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOTDIR") throw e;
          throw failedPrecondition(`"${loc.rel || "."}" is not a directory: use StatFile`);
        }
        return create(ListFilesResponseSchema, { entries, truncated: false });
      });
    },

    async statFile(req) {
      return ws.at(req.path, ENTRY, async (loc) =>
        create(StatFileResponseSchema, { info: await lstatInfo(loc.path, loc.rel) }),
      );
    },

    async readFile(req) {
      ws.normalize(req.path);
      if (req.limit > BigInt(maxFileRead)) {
        throw invalidArgument(
          `limit ${req.limit} is larger than the read limit of ${formatBytes(maxFileRead)} (${maxFileRead} bytes): read in smaller ranges`,
        );
      }
      return ws.at(req.path, TARGET, async (loc) => {
        const fh = await open(loc.path, READ_FLAGS);
        try {
          const st = await fh.stat({ bigint: true });
          if (st.isDirectory()) throw failedPrecondition(`"${loc.rel || "."}" is a directory: use ListFiles`);
          if (!st.isFile()) throw failedPrecondition(`"${loc.rel}" is not a regular file (a device, socket or FIFO)`);
          const size = st.size;
          let start = req.offset < 0n ? size + req.offset : req.offset;
          if (start < 0n) start = 0n;
          if (start > size) start = size;
          const available = size - start;
          if (req.limit === 0n && available > BigInt(maxFileRead)) {
            throw resourceExhausted(
              `file is ${formatBytes(Number(size))}, larger than the read limit of ${formatBytes(maxFileRead)}: read a byte range (offset and limit)`,
            );
          }
          const want = req.limit === 0n || req.limit > available ? available : req.limit;
          const content = Buffer.alloc(Number(want));
          let got = 0;
          while (got < content.length) {
            const { bytesRead } = await fh.read(content, got, content.length - got, Number(start) + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return create(ReadFileResponseSchema, {
            content: content.subarray(0, got),
            info: await infoFromStats(loc.path, loc.rel, st),
            offset: start,
            truncated: start + BigInt(got) < size,
          });
        } finally {
          await fh.close();
        }
      });
    },

    async searchFiles(req) {
      return ws.at(req.path, TARGET, async (loc) => {
        const r = await searchFiles({
          abs: loc.path,
          rel: loc.rel,
          glob: req.glob,
          contentPattern: req.contentPattern,
          regex: req.regex,
          caseSensitive: req.caseSensitive,
          exclude: req.exclude,
          maxResults: req.maxResults || DEFAULT_SEARCH_RESULTS,
          maxFileBytes: maxFileRead,
        });
        return create(SearchFilesResponseSchema, {
          paths: r.paths,
          matches: r.matches.map((m) => create(SearchMatchSchema, m)),
          truncated: r.truncated,
        });
      });
    },

    async *watchFiles(req, ctx) {
      for await (const events of watchBatches(ws, req.path, req.recursive, ctx.signal)) {
        yield create(WatchFilesResponseSchema, { events });
      }
    },
  };
}
