/**
 * zod/mini with English messages: every schema in the services imports z from here. The full zod
 * costs every process tens of milliseconds to load; zod/mini ships no messages ("Invalid input" for
 * everything) until a locale is configured, and importing z from here makes sure it is. Only
 * English is imported: z.locales would bundle every language.
 */
import { en } from "zod/locales";
import * as z from "zod/mini";

z.config(en());

export { z };
