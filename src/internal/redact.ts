/**
 * Text with the credentials of every URL in it replaced by `***`
 * (`nats://user:secret@host` -> `nats://***@host`): what summaries, logs,
 * errors and the dead-letter endpoint show.
 */
export const redactUrls = (text: string): string => text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'?#]+@/gi, "$1***@")
