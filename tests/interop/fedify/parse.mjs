// Parse each meshnode document given on stdin ([{label, document}, ...]) with Fedify's own
// vocabulary (Object.fromJsonLd picks the class from the expanded type) and print, as JSON,
// the fields it read, or the error it raised. Run by tests/interop/test_fedify_parse.py.
if (globalThis.navigator === undefined) {
  // Fedify 2.x reads navigator.userAgent; Node 20 lacks it (REFERENCE.md §4).
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node}` };
}
const vocab = await import("@fedify/vocab");
const { offlineLoader } = await import("./loader.mjs");
const opts = { documentLoader: offlineLoader, contextLoader: offlineLoader };

const href = (url) => (url == null ? null : url.href);
const text = (value) => (value == null ? null : value.toString());

function measure(m) {
  return m == null ? null : { unit: m.unit, value: text(m.numericalValue) };
}

function intent(i) {
  if (i == null) return null;
  return {
    id: href(i.id), action: i.action, resourceConformsTo: href(i.resourceConformsTo),
    resourceQuantity: measure(i.resourceQuantity),
    availableQuantity: measure(i.availableQuantity),
    minimumQuantity: measure(i.minimumQuantity),
  };
}

async function proofs(object) {
  const out = [];
  for await (const p of object.getProofs(opts)) {
    out.push({
      cryptosuite: p.cryptosuite, verificationMethod: href(p.verificationMethodId),
      proofPurpose: p.proofPurpose, created: text(p.created),
      proofValueHex: p.proofValue == null ? null : Buffer.from(p.proofValue).toString("hex"),
    });
  }
  return out;
}

async function place(object) {
  if (!("getLocation" in object)) return null;
  const loc = await object.getLocation(opts);
  if (loc == null) return null;
  return { type: loc.constructor.name, name: text(loc.name), latitude: loc.latitude ?? null,
           longitude: loc.longitude ?? null };
}

async function actorFields(object) {
  if (!("preferredUsername" in object)) return null;
  const key = await object.getPublicKey(opts);
  const methods = [];
  for await (const m of object.getAssertionMethods(opts)) {
    methods.push({ id: href(m.id), controller: href(m.controllerId),
                   type: m.constructor.name });
  }
  return {
    preferredUsername: text(object.preferredUsername), inbox: href(object.inboxId),
    sharedInbox: href(object.endpoints?.sharedInbox ?? null),
    publicKey: key == null ? null : { id: href(key.id), owner: href(key.ownerId) },
    assertionMethods: methods,
  };
}

async function parse(document) {
  const object = await vocab.Object.fromJsonLd(document, opts);
  const fields = {
    class: object.constructor.name, id: href(object.id), name: text(object.name),
    content: text(object.content), published: text(object.published),
    proofs: await proofs(object), location: await place(object),
    actor: await actorFields(object),
  };
  if (object instanceof vocab.Proposal) {
    Object.assign(fields, { purpose: object.purpose, unitBased: object.unitBased,
                            publishes: intent(object.publishes),
                            reciprocal: intent(object.reciprocal) });
  }
  if (object instanceof vocab.Activity) {
    fields.activityActor = href(object.actorId);
    fields.activityObject = href(object.objectId);
  }
  if (object instanceof vocab.Tombstone) fields.deleted = text(object.deleted);
  return fields;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const results = {};
for (const { label, document } of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
  try {
    results[label] = { ok: true, fields: await parse(document) };
  } catch (error) {
    results[label] = { ok: false, error: `${error?.name}: ${error?.message}` };
  }
}
process.stdout.write(JSON.stringify(results));
