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
for (const name of ["putObject", "copyObject", "deleteObject"]) {
  const original = FilesystemStore.prototype[name];
  FilesystemStore.prototype[name] = function (...args) {
    const run = last.then(() => original.apply(this, args));
    last = run.catch(() => {});
    return run;
  };
}

require("s3rver/bin/s3rver.js");
