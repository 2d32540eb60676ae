// Story values the browser SDK needs, without the schema library (stories.ts re-exports them).
/**
 * Largest Yjs update one frame may carry (decoded bytes). Its base64 form (4/3 as long) plus the
 * frame's other fields stays under the 64 KiB frame limit, so an oversize update gets a clear
 * `update_too_large` instead of a 1009 close.
 */
export const MAX_UPDATE_BYTES = 45 * 1024;
/** Largest awareness update (one client's cursor, selection and name). */
export const MAX_AWARENESS_BYTES = 4 * 1024;
/** Largest encoded document a story may grow to (its whole state, as a joining client gets it). */
export const MAX_DOCUMENT_BYTES = 512 * 1024;

const CHUNK = 0x8000;

export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

export function fromBase64(encoded: string): Uint8Array {
  const binary = atob(encoded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The name of the document's text: `doc.getText(BODY_TEXT)` is the story's readable body. */
export const BODY_TEXT = 'body';
