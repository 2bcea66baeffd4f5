/** Maps errno failures of file operations to domain errors whose message names the path. */
import {
  alreadyExists,
  DomainError,
  failedPrecondition,
  invalidArgument,
  notFound,
  permissionDenied,
  resourceExhausted,
} from "../../../../lib/kit/errors.js";

export function fsError(err: unknown, rel: string): unknown {
  if (err instanceof DomainError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const p = `"${rel || "."}"`;
  switch (code) {
    case "ENOENT":
      return notFound(`${p} does not exist`);
    case "EEXIST":
      return alreadyExists(`${p} already exists`);
    case "ENOTDIR":
      return failedPrecondition(`a parent of ${p} is not a directory`);
    case "EISDIR":
      return failedPrecondition(`${p} is a directory`);
    case "ENOTEMPTY":
      return failedPrecondition(`${p} is a non-empty directory: set recursive to delete it with its contents`);
    case "EACCES":
    case "EPERM":
      return permissionDenied(`no permission to access ${p}`);
    case "ELOOP":
      return invalidArgument(`${p} is a symbolic link where a file or directory is needed`);
    case "ENOSPC":
    case "EDQUOT":
      return resourceExhausted("the workspace disk is full");
    case "EINVAL":
      return invalidArgument(`invalid operation on ${p}`);
    case "ENAMETOOLONG":
      return invalidArgument(`${p} is too long a name`);
    default:
      return err;
  }
}

/** Runs an fs operation, translating errno failures for `rel`. */
export async function withFsErrors<T>(rel: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw fsError(e, rel);
  }
}
