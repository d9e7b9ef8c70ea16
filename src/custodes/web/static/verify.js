// Checks a custodes proof bundle in the browser, with Web Crypto only (SHA-256, Ed25519).
//
// A bundle (GET /portal/proofs) carries the log's verifier key, the configured witnesses' keys,
// one signed checkpoint note and, per entry, its exact bytes and RFC 9162 inclusion proof.
// Nothing in it is taken on trust: the checkpoint must carry a valid signature by the log key
// (C2SP signed-note, Ed25519) and a valid cosignature by a configured witness (C2SP
// tlog-cosignature v1); each entry must hash into the checkpoint's root through its proof, and
// must itself name the signed-in subject and its own position. The Python twin of these checks
// is custodes.web._proofs.check_bundle; the formats are those of custodes.ledger.note.

const SIG_PREFIX = "\u2014 "; // "— "
const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;
const KEY_ID_SIZE = 4;
const HASH_SIZE = 32;
const utf8 = new TextEncoder();

export class VerifyError extends Error {}

// --- bytes ------------------------------------------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// Strict standard base64, as the Python side writes it: no stray characters, canonical padding.
export function b64decode(text, what) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new VerifyError(`${what} is not valid base64`);
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw new VerifyError(`${what} is not canonical base64`);
  return bytes;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

// --- keys and notes (C2SP signed-note) --------------------------------------------------------

function validName(name) {
  return name.length > 0 && !/[\s+]/.test(name) && !/[\u0000-\u001f]/.test(name);
}

// A vkey "name+keyid+base64(alg || key)": check its key ID and import its Ed25519 key.
export async function parseVkey(vkey) {
  // name+keyid+material, where only the base64 material may hold further '+' signs.
  const match = typeof vkey === "string" ? /^([^+]*)\+([0-9a-f]{8})\+(.*)$/s.exec(vkey) : null;
  if (!match || !validName(match[1])) throw new VerifyError("a verifier key is malformed");
  const [, name, id, material] = match;
  const raw = b64decode(material, `the key of ${name}`);
  if (raw.length !== 1 + 32 || (raw[0] !== ALG_ED25519 && raw[0] !== ALG_COSIGNATURE_V1)) {
    throw new VerifyError(`the key of ${name} is not an Ed25519 key`);
  }
  const keyId = (await sha256(utf8.encode(name + "\n"), raw)).slice(0, KEY_ID_SIZE);
  if (hex(keyId) !== id) throw new VerifyError(`the key ID of ${name} does not match its key`);
  const publicKey = raw.slice(1);
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
    "verify",
  ]);
  return { name, alg: raw[0], keyId, publicKey, key };
}

// The first 16 bytes of SHA-256(public key), in groups of four hex digits (as the server's
// custodes.web._proofs.key_fingerprint), for comparing with a published fingerprint.
export async function fingerprint(vkey) {
  const { publicKey } = await parseVkey(vkey);
  const digest = hex(await sha256(publicKey)).slice(0, 32);
  return digest.match(/.{4}/g).join(" ");
}

export function parseNote(note) {
  if (typeof note !== "string" || !note.endsWith("\n")) {
    throw new VerifyError("the checkpoint note is malformed");
  }
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0) throw new VerifyError("the checkpoint note has no signatures");
  const text = note.slice(0, cut + 1);
  const signatures = note
    .slice(cut + 2, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith(SIG_PREFIX)) throw new VerifyError("a signature line is malformed");
      const rest = line.slice(SIG_PREFIX.length);
      const space = rest.indexOf(" ");
      if (space <= 0) throw new VerifyError("a signature line is malformed");
      const name = rest.slice(0, space);
      const raw = b64decode(rest.slice(space + 1), `the signature of ${name}`);
      if (raw.length <= KEY_ID_SIZE) throw new VerifyError(`the signature of ${name} is too short`);
      return { name, keyId: raw.slice(0, KEY_ID_SIZE), payload: raw.slice(KEY_ID_SIZE) };
    });
  return { text, signatures };
}

export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length !== 4 || lines[3] !== "") {
    throw new VerifyError("the checkpoint is not three lines");
  }
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new VerifyError("the checkpoint size is not a number");
  }
  const root = b64decode(rootText, "the checkpoint root");
  if (root.length !== HASH_SIZE) throw new VerifyError("the checkpoint root is not 32 bytes");
  return { origin, size: Number(sizeText), root };
}

async function ed25519(key, signature, message) {
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

function signaturesBy(signatures, key) {
  return signatures.filter((s) => s.name === key.name && equal(s.keyId, key.keyId));
}

async function checkLogSignature(text, signatures, log) {
  const lines = signaturesBy(signatures, log);
  if (lines.length === 0) throw new VerifyError("the checkpoint is not signed by the log's key");
  for (const line of lines) {
    if (line.payload.length !== 64 || !(await ed25519(log.key, line.payload, utf8.encode(text)))) {
      throw new VerifyError("the log's signature on the checkpoint does not verify");
    }
  }
}

// C2SP tlog-cosignature v1: payload = 8-byte big-endian timestamp || Ed25519 signature over
// "cosignature/v1\ntime <timestamp>\n" + checkpoint body.
async function checkCosignature(text, line, witness) {
  if (line.payload.length !== 8 + 64) return false;
  const view = new DataView(line.payload.buffer, line.payload.byteOffset, 8);
  const timestamp = view.getBigUint64(0);
  if (timestamp > 2n ** 63n - 1n) return false;
  const message = utf8.encode(`cosignature/v1\ntime ${timestamp}\n${text}`);
  return ed25519(witness.key, line.payload.slice(8), message);
}

async function checkWitnesses(text, signatures, witnessVkeys) {
  const cosigned = [];
  for (const vkey of witnessVkeys) {
    const witness = await parseVkey(vkey);
    if (witness.alg !== ALG_COSIGNATURE_V1) {
      throw new VerifyError(`the key of witness ${witness.name} is not a cosignature key`);
    }
    for (const line of signaturesBy(signatures, witness)) {
      if (!(await checkCosignature(text, line, witness))) {
        throw new VerifyError(`the cosignature of witness ${witness.name} does not verify`);
      }
      if (!cosigned.includes(witness.name)) cosigned.push(witness.name);
    }
  }
  if (witnessVkeys.length > 0 && cosigned.length === 0) {
    throw new VerifyError("no witness cosigned the checkpoint");
  }
  return cosigned;
}

// Verify a checkpoint note: the log's signature and the configured witnesses' cosignatures.
// Returns { origin, size, root, witnesses } or throws VerifyError saying why.
export async function verifyCheckpoint(note, logVkey, witnessVkeys) {
  const log = await parseVkey(logVkey);
  if (log.alg !== ALG_ED25519) throw new VerifyError("the log key is not an Ed25519 note key");
  const { text, signatures } = parseNote(note);
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== log.name) throw new VerifyError("the checkpoint is of another log");
  await checkLogSignature(text, signatures, log);
  const witnesses = await checkWitnesses(text, signatures, witnessVkeys);
  return { ...checkpoint, witnesses };
}

// --- Merkle inclusion (RFC 9162 §2.1.3.2) -----------------------------------------------------

// The proof length RFC 9162 implies for leaf `index` of `size`: the levels below the point
// where the leaf's path leaves the tree's right edge, plus the right-edge levels above it.
function inclusionLength(index, size) {
  let inner = 0;
  let level = 0;
  for (let a = index, b = size - 1; a > 0 || b > 0; a = Math.floor(a / 2), b = Math.floor(b / 2)) {
    level++;
    if (a % 2 !== b % 2) inner = level;
  }
  let border = 0;
  for (let x = Math.floor(index / 2 ** inner); x > 0; x = Math.floor(x / 2)) border += x % 2;
  return inner + border;
}

export async function leafHash(entry) {
  return sha256(Uint8Array.of(0x00), entry);
}

async function nodeHash(left, right) {
  return sha256(Uint8Array.of(0x01), left, right);
}

// Throws VerifyError unless `entry` is leaf `index` of the tree of `size` leaves with `root`.
export async function verifyInclusion(entry, index, size, proof, root) {
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw new VerifyError(`position ${index} is outside the signed log of ${size} entries`);
  }
  // Index and size stay below 2^53: plain numbers, halved with Math.floor (no 32-bit >>).
  if (inclusionLength(index, size) !== proof.length) {
    throw new VerifyError("the inclusion proof has the wrong length");
  }
  let fn = index;
  let sn = size - 1;
  let r = await leafHash(entry);
  for (const p of proof) {
    if (p.length !== HASH_SIZE) throw new VerifyError("an inclusion proof hash is not 32 bytes");
    if (sn === 0) throw new VerifyError("the inclusion proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(r, root)) {
    throw new VerifyError("altered: its hash does not lead to the signed root");
  }
}

// --- bundles ----------------------------------------------------------------------------------

function decodeEntry(item) {
  const bytes = b64decode(item.entry, "the entry");
  let event;
  try {
    event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new VerifyError("the entry is not a valid log entry");
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new VerifyError("the entry is not a valid log entry");
  }
  return { bytes, event };
}

function checkOwnEntry(event, subject, index) {
  if (event.subject !== subject) throw new VerifyError("the entry is about someone else");
  if (event.seq !== index) throw new VerifyError(`the entry says it is at another position`);
}

async function checkEntry(bundle, item, checkpoint) {
  const result = { index: item.index, state: "failed", why: "", event: null };
  try {
    if (typeof item.entry !== "string") throw new VerifyError(item.problem || "no entry");
    const { bytes, event } = decodeEntry(item);
    result.event = event;
    if (checkpoint.error) throw new VerifyError(checkpoint.error);
    if (!checkpoint.size || item.index >= checkpoint.size) {
      checkOwnEntry(event, bundle.subject, item.index);
      return { ...result, state: "pending", why: "newer than the latest signed checkpoint" };
    }
    if (!Array.isArray(item.proof)) throw new VerifyError(item.problem || "no inclusion proof");
    const proof = item.proof.map((p) => b64decode(p, "an inclusion proof hash"));
    await verifyInclusion(bytes, item.index, checkpoint.size, proof, checkpoint.root);
    checkOwnEntry(event, bundle.subject, item.index);
    const state = checkpoint.witnesses.length > 0 ? "verified" : "unwitnessed";
    return { ...result, state, why: "" };
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return { ...result, why: err.message };
  }
}

// Check a whole bundle. Returns { checkpoint, entries } where checkpoint is { origin, size,
// root, witnesses, note } or { error } and each entry is { index, state, why, event } with
// state "verified", "unwitnessed" (no witness configured), "pending" or "failed".
export async function verifyBundle(bundle) {
  let checkpoint = { size: 0, witnesses: [] };
  if (bundle.checkpoint) {
    try {
      const note = bundle.checkpoint.note;
      checkpoint = await verifyCheckpoint(note, bundle.log.vkey, bundle.witnesses || []);
      checkpoint.note = note;
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      checkpoint = { error: `checkpoint: ${err.message}`, witnesses: [] };
    }
  }
  const entries = [];
  for (const item of bundle.entries) entries.push(await checkEntry(bundle, item, checkpoint));
  return { checkpoint, entries };
}
