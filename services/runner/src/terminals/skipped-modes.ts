/**
 * The terminal state that output the mirror skipped over leaves behind, as escape sequences that
 * set it again: each private mode's last DECSET/DECRST (alternate screen, cursor keys, bracketed
 * paste, mouse reporting, cursor visibility, ...), the last scroll region (DECSTBM), keypad mode
 * (DECKPAM/DECKPNM), G0/G1 character sets and which one is shifted in, and the last SGR (colours
 * and attributes). Everything else the skipped output did is drawn over by what follows it.
 * A sequence cut by the skip's edge is lost; xterm's parser ignores the fragment.
 */

// Latin-1 keeps one character per byte, so the patterns match bytes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const decModes = /\x1b\[\?([0-9;]+)([hl])/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const scrollRegion = /\x1b\[([0-9]*(?:;[0-9]*)?)r/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const keypad = /\x1b([=>])/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const charset = /\x1b([()])([0-9A-Za-z])/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const shift = /[\x0e\x0f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are the point.
const sgr = /\x1b\[([0-9;:]*)m/g;

/** Escape sequences that restore what `skipped` (in order) set. */
export function modesOf(skipped: Buffer[]): Buffer {
  const modes = new Map<string, string>();
  let region: string | undefined;
  let pad: string | undefined;
  const charsets = new Map<string, string>();
  let shifted: string | undefined;
  let attrs: string | undefined;
  for (const chunk of skipped) {
    // Floods are mostly plain text: a chunk without ESC, SO or SI (found natively) sets nothing.
    if (chunk.indexOf(0x1b) < 0 && chunk.indexOf(0x0e) < 0 && chunk.indexOf(0x0f) < 0) continue;
    const text = chunk.toString("latin1");
    for (const m of text.matchAll(decModes)) {
      for (const p of m[1].split(";").filter(Boolean)) {
        modes.delete(p); // keep the order of the last settings
        modes.set(p, m[2]);
      }
    }
    for (const m of text.matchAll(scrollRegion)) region = m[1];
    for (const m of text.matchAll(keypad)) pad = m[1];
    for (const m of text.matchAll(charset)) charsets.set(m[1], m[2]);
    for (const m of text.matchAll(shift)) shifted = m[0];
    for (const m of text.matchAll(sgr)) attrs = m[1];
  }
  let out = "";
  for (const [p, hl] of modes) out += `\x1b[?${p}${hl}`;
  if (region !== undefined) out += `\x1b[${region}r`;
  if (pad) out += `\x1b${pad}`;
  for (const [g, set] of charsets) out += `\x1b${g}${set}`;
  if (shifted) out += shifted;
  if (attrs !== undefined) out += `\x1b[${attrs}m`;
  return Buffer.from(out, "latin1");
}
