/**
 * s3rver's own command, with its filesystem store's object writes and deletes taken one at a time.
 *
 * Its deleteObject removes the directories a key's deletion empties, so a PUT under the same prefix
 * can find its directory gone between its mkdirp and its open. The write stream's error has no
 * listener, and the whole server exits. CI saw this in lib/sync's GC race: a checkpoint written while
 * its tree's last checkpoint was deleted. Real S3 has no directories, and such a PUT succeeds there.
 * Everything else is s3rver as published. putObjectMultipart goes through putObject, so it is not
 * wrapped (that would deadlock).
 */
const FilesystemStore = require("s3rver/lib/stores/filesystem.js");

let last = Promise.resolve();
function serialized(original) {
  return function (...args) {
    const run = last.then(() => original.apply(this, args));
    last = run.catch(() => {});
    return run;
  };
}
for (const name of ["copyObject", "deleteObject"]) {
  FilesystemStore.prototype[name] = serialized(FilesystemStore.prototype[name]);
}

// s3rver writes an object in place (truncating the file) and, for a Buffer body, answers before the
// write finished: a GET racing a re-PUT of the same key could read it empty or cut short (CI: a
// state record that failed to gunzip). Real S3 PUTs are atomic, so the body goes to a temporary
// file that replaces the object once written, and the PUT answers after that.
const fs = require("node:fs");
const { pipeline } = require("node:stream/promises");
const { Readable } = require("node:stream");
const crypto = require("node:crypto");
const path = require("node:path");
FilesystemStore.prototype.putObject = serialized(async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, "object");
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const temporary = `${objectPath}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.partial`;
  const md5 = crypto.createHash("md5");
  let size = 0;
  const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  await pipeline(
    body,
    async function* (chunks) {
      for await (const chunk of chunks) {
        md5.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    fs.createWriteStream(temporary),
  );
  await fs.promises.rename(temporary, objectPath);
  const digest = md5.digest("hex");
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
});

require("s3rver/bin/s3rver.js");
