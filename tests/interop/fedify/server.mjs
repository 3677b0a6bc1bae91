// A minimal Fedify 2.3.6 server on 127.0.0.1 for tests/interop/test_fedify_server.py.
// One Person actor "fedi" with an RSA key (publicKey, HTTP signatures) and an Ed25519 key
// (assertionMethod). Everything that reaches an inbox is checked with Fedify's own verifiers
// (verifyRequest for the HTTP signature, verifyProof for an embedded object's FEP-8b32 proof)
// and recorded; pytest reads the records at GET /control/events and drives the actor with
// POST /control/{follow,undo,create}. Prints "listening PORT" once ready.
if (globalThis.navigator === undefined) {
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node}` };
}
const http = await import("node:http");
const fedify = await import("@fedify/fedify");
const vocab = await import("@fedify/vocab");
const { parseDecimal } = await import("@fedify/vocab-runtime");
const { localLoader } = await import("./loader.mjs");

// Every POST Fedify sends is recorded with the signature spec it used and the answer, so
// pytest can tell which spec our inbox accepted (Fedify would silently retry with the other).
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  const response = await realFetch(request.clone());
  if (request.method === "POST") {
    const body = await request.clone().text();
    let id = null;
    try { id = JSON.parse(body).id ?? null; } catch { /* not JSON: keep id null */ }
    events.push({ sent: id, to: request.url, status: response.status,
                  spec: request.headers.has("signature-input") ? "rfc9421" : "draft-cavage" });
  }
  return response;
};

const ACTOR = "fedi";
const keys = [
  await fedify.generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
  await fedify.generateCryptoKeyPair("Ed25519"),
];
const events = [];
let origin = null;

function makeFederation(firstKnock) {
  // Contexts come from the copies vendored in @fedify/vocab-runtime, documents only from
  // 127.0.0.1 (localLoader): Fedify never reaches the network.
  const factory = () => localLoader;
  const federation = fedify.createFederation({
    kv: new fedify.MemoryKvStore(), firstKnock, documentLoaderFactory: factory,
    contextLoaderFactory: factory, authenticatedDocumentLoaderFactory: factory,
  });
  federation.setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ACTOR) return null;
    const pairs = await ctx.getActorKeyPairs(identifier);
    return new vocab.Person({
      id: ctx.getActorUri(identifier), preferredUsername: identifier, name: "Fedify tester",
      inbox: ctx.getInboxUri(identifier), url: ctx.getActorUri(identifier),
      endpoints: new vocab.Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      publicKey: pairs[0].cryptographicKey,
      assertionMethods: pairs.map((pair) => pair.multikey),
    });
  }).setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === ACTOR ? keys : []));
  federation.setFollowersDispatcher("/users/{identifier}/followers", async () => ({ items: [] }));
  federation.setInboxListeners("/users/{identifier}/inbox", "/inbox")
    .on(vocab.Accept, async (_ctx, accept) => {
      events.push({ listener: "Accept", id: accept.id?.href, actor: accept.actorId?.href });
    })
    .on(vocab.Create, async (_ctx, create) => {
      const object = await create.getObject();
      events.push({ listener: "Create", id: create.id?.href, actor: create.actorId?.href,
                    objectClass: object?.constructor.name, name: object?.name?.toString() });
    })
    .onError(async (_ctx, error) => {
      events.push({ listener: "error", error: `${error?.name}: ${error?.message}` });
    });
  return federation;
}

const federations = {
  "rfc9421": makeFederation("rfc9421"),
  "draft-cavage-http-signatures-12": makeFederation("draft-cavage-http-signatures-12"),
};
const main = federations["rfc9421"];

async function checkInboxPost(request, body) {
  const opts = { documentLoader: localLoader, contextLoader: localLoader };
  const record = { inbox: new URL(request.url).pathname,
                   spec: request.headers.has("signature-input") ? "rfc9421" : "draft-cavage" };
  const key = await fedify.verifyRequest(request.clone(), opts);
  record.httpSignatureKey = key?.id?.href ?? null;
  const json = JSON.parse(new TextDecoder().decode(body));
  record.type = json.type;
  record.id = json.id;
  const object = json.object;
  if (object != null && typeof object === "object" && object.proof != null) {
    const proof = await vocab.DataIntegrityProof.fromJsonLd(
      { ...object.proof, "@context": object["@context"] }, opts);
    const verified = await fedify.verifyProof(object, proof, opts);
    record.objectId = object.id;
    record.objectProofKey = verified?.id?.href ?? null;
  }
  events.push(record);
}

async function control(command, body) {
  const ctx = main.createContext(new URL(origin), undefined);
  const federation = federations[body.spec ?? "rfc9421"];
  const sendCtx = federation.createContext(new URL(origin), undefined);
  const me = ctx.getActorUri(ACTOR);
  if (command === "post") return await signedPost(ctx, me, body);
  const target = await ctx.lookupObject(body.target);
  if (target == null) throw new Error(`cannot look up ${body.target}`);
  let activity;
  if (command === "follow" || command === "undo") {
    const follow = new vocab.Follow({ id: new URL(`${origin}/follows/${body.tag}`), actor: me,
                                      object: target.id });
    activity = command === "follow" ? follow : new vocab.Undo({
      id: new URL(`${origin}/follows/${body.tag}/undo`), actor: me, object: follow });
  } else if (command === "create") {
    activity = new vocab.Create({ id: new URL(`${origin}/proposals/${body.tag}/create`),
      actor: me, object: await signedProposal(me, body), to: vocab.PUBLIC_COLLECTION });
  } else {
    throw new Error(`unknown command ${command}`);
  }
  await sendCtx.sendActivity({ identifier: ACTOR }, target, activity, { immediate: true });
  return { sent: activity.id.href, actor: me.href };
}

// A public FEP-0837 listing, signed (FEP-8b32) with the actor's Ed25519 key (the id Fedify
// gives it in the actor's assertionMethod: #multikey-2).
async function signedProposal(me, body) {
  return await fedify.signObject(new vocab.Proposal({
      id: new URL(`${origin}/proposals/${body.tag}`), attribution: me, name: body.name,
      content: body.content, purpose: "offer", to: vocab.PUBLIC_COLLECTION,
      publishes: new vocab.Intent({
        action: "transfer", resourceConformsTo: new URL("urn:meshnode:ns#category-give"),
        resourceQuantity: new vocab.Measure({ unit: "one", numericalValue: parseDecimal("1") }),
      }),
    }), keys[1].privateKey, new URL(`${me.href}#multikey-2`));
}

// A Create of that listing in compact JSON-LD (the Proposal keeps its own @context, as
// FEP-8b32 embeds signed objects), POSTed to body.inbox with an HTTP signature made by
// Fedify's signRequest in body.spec with the actor's RSA key.
async function signedPost(ctx, me, body) {
  const proposal = await (await signedProposal(me, body)).toJsonLd({ format: "compact" });
  const id = `${origin}/proposals/${body.tag}/create`;
  const create = { "@context": "https://www.w3.org/ns/activitystreams", id, type: "Create",
                   actor: me.href, object: proposal, to: [vocab.PUBLIC_COLLECTION.href] };
  const [rsa] = await ctx.getActorKeyPairs(ACTOR);
  const request = new Request(body.inbox, {
    method: "POST", body: JSON.stringify(create),
    headers: { "content-type": "application/activity+json", accept: "application/activity+json" },
  });
  const signed = await fedify.signRequest(request, rsa.privateKey, rsa.keyId, { spec: body.spec });
  const response = await fetch(signed);
  return { sent: id, status: response.status, body: await response.text(),
           signatureInput: signed.headers.get("signature-input"),
           signature: signed.headers.get("signature") };
}

function reply(res, status, payload) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(payload));
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url, origin);
  try {
    if (url.pathname === "/control/events") return reply(res, 200, events);
    if (url.pathname.startsWith("/control/")) {
      const result = await control(url.pathname.slice(9), JSON.parse(body.toString("utf8")));
      return reply(res, 200, result);
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const init = { method: req.method, headers };
    if (req.method !== "GET" && req.method !== "HEAD") init.body = body;
    const request = new Request(url, init);
    if (req.method === "POST" && url.pathname.endsWith("inbox")) {
      await checkInboxPost(request.clone(), body).catch((error) => {
        events.push({ inbox: url.pathname, checkError: `${error?.name}: ${error?.message}` });
      });
    }
    const response = await main.fetch(request, { contextData: undefined });
    if (req.method === "POST") events.push({ answered: url.pathname, status: response.status });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    reply(res, 500, { error: `${error?.name}: ${error?.message}`, stack: error?.stack });
  }
});
server.listen(0, "127.0.0.1", () => {
  origin = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`listening ${server.address().port}\n`);
});
