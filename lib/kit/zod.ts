/**
 * zod/mini with English messages: every schema in the services imports z from here
 * (`import * as z from ".../lib/kit/zod.js"`). The full zod costs every process tens of milliseconds
 * to load; zod/mini ships no messages ("Invalid input" for everything) until a locale is configured,
 * and importing it from here makes sure one is. Only English is imported: z.locales would bundle
 * every language. Re-exported with `export *`, not as a namespace value, so that bundles keep only
 * what the schemas use.
 */
import { en } from "zod/locales";
import { config } from "zod/mini";

config(en());

export * from "zod/mini";
