// A JSON-LD document loader that never touches the network: it serves only the contexts
// vendored in @fedify/vocab-runtime (pinned by package-lock.json) and refuses anything else,
// so a document that needs another context fails loudly instead of fetching it.
import { preloadedContexts } from "@fedify/vocab-runtime";

export async function offlineLoader(url) {
  const document = preloadedContexts[url];
  if (document === undefined) {
    throw new Error(`context not vendored, refusing to fetch: ${url}`);
  }
  return { contextUrl: null, documentUrl: url, document };
}

// The same, plus documents on 127.0.0.1 (the node under test), fetched as ActivityPub JSON.
// Any other URL is refused: tests never reach beyond the loopback interface.
export async function localLoader(url) {
  if (preloadedContexts[url] !== undefined) return offlineLoader(url);
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" || parsed.hostname !== "127.0.0.1") {
    throw new Error(`refusing to fetch outside 127.0.0.1: ${url}`);
  }
  const response = await fetch(url, { headers: { accept: "application/activity+json" } });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return { contextUrl: null, documentUrl: response.url, document: await response.json() };
}
