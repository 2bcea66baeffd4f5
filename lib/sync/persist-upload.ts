/**
 * A persist's uploads of changed file contents: small files go into 8 MiB packs while the walk goes
 * on (at most 4 pack uploads at once), larger ones become objects of their own. A file counts as
 * stored (`onStored`) only once its upload succeeded. Packs less than half alive are rewritten from
 * the stored pack (`repack`).
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import type { PersistStore } from "./persist-store.js";
import { OBJECTS, PACKS, type RemoteState } from "./remote.js";
import type { RemoteFile } from "./types.js";
import { semaphore, sha256 } from "./util.js";

/** A pack is closed at this size. */
const PACK_MAX = 8 * 1024 * 1024;

const newId = () => `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;

type Progress = { add(files: number, bytes: number): void; plan(files: number, bytes: number): void };

export class Uploads {
  /** Files uploaded, and their bytes (a pack's whole size). */
  transferred = 0;
  transferredBytes = 0;
  private readonly packUploads: ReturnType<typeof semaphore>;
  private pack = { id: newId(), parts: [] as Buffer[], entries: [] as Array<[string, RemoteFile]>, size: 0 };

  constructor(
    private readonly store: PersistStore,
    concurrency: number,
    private readonly progress: Progress,
    private readonly onStored: (rel: string, f: RemoteFile) => void,
  ) {
    this.packUploads = semaphore(Math.max(1, Math.min(concurrency, 4)));
  }

  /** Uploads one file as an object of its own. */
  async putObject(rel: string, sha: string, size: number, body: () => Buffer | Readable) {
    const id = newId();
    await this.store.put(OBJECTS + id, body, size);
    this.onStored(rel, { sha256: sha, size, object: id });
    this.transferred++;
    this.transferredBytes += size;
    this.progress.add(1, size);
  }

  /** Adds a small file to the open pack, uploading the pack first when the file would overflow it. */
  async addToPack(rel: string, content: Buffer) {
    if (this.pack.size + content.length > PACK_MAX && this.pack.parts.length) await this.flushPack();
    const p = this.pack;
    p.entries.push([rel, { sha256: sha256(content), size: content.length, pack: p.id, offset: p.size }]);
    p.parts.push(content);
    p.size += content.length;
  }

  /** Uploads the open pack, if it holds anything. */
  async flushPack() {
    const p = this.pack;
    if (!p.parts.length) return;
    this.pack = { id: newId(), parts: [], entries: [], size: 0 };
    const body = Buffer.concat(p.parts);
    await this.packUploads(() => this.store.put(PACKS + p.id, () => body, body.length));
    for (const [rel, f] of p.entries) this.onStored(rel, f);
    this.transferred += p.entries.length;
    this.transferredBytes += body.length;
    this.progress.add(p.entries.length, body.length);
  }

  /**
   * Packs less than half alive in `next` (the files the new generation keeps): their live files go
   * into a new pack, read from the stored pack and checked against their hashes.
   */
  async repack(remote: RemoteState, next: Record<string, RemoteFile>) {
    const live = new Map<string, string[]>();
    for (const [rel, f] of Object.entries(next)) {
      if (!f.pack || f.from) continue; // a lender's packs are never rewritten here
      const rels = live.get(f.pack) ?? [];
      if (!rels.length) live.set(f.pack, rels);
      rels.push(rel);
    }
    const underused = [...live].filter(([pack, rels]) => {
      const size = remote.objects[PACKS + pack] ?? 0;
      return rels.reduce((n, rel) => n + next[rel].size, 0) * 2 < size;
    });
    for (const [pack, rels] of underused) {
      const body = await this.store.readPack(pack);
      for (const rel of rels) {
        const f = next[rel];
        const content = body.subarray(f.offset!, f.offset! + f.size);
        if (sha256(content) !== f.sha256) throw new Error(`pack ${pack}: ${rel} does not match its hash`);
        this.progress.plan(1, f.size);
        await this.addToPack(rel, content);
      }
    }
  }
}
