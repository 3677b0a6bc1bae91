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
