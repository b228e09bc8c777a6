// Checking a ledger statement line in the browser, trusting nothing the server says about it:
// the entry's stored bytes are hashed here, the RFC 9162 inclusion proof is folded up to the
// checkpoint root, and the checkpoint's Ed25519 signature is checked with WebCrypto against
// the district's public key (following key rotations from the first key).
//
// Input is a receipt as `ledger/receipt.py` builds it:
//   {entry: "<canonical body text>", index, proof: [hex...], checkpoint: {district, size, root,
//    at_ms, key_id, signature, next_key_id}, keys: {district, keys: [{key_id, public,
//    valid_from_size}], rotations: [checkpoint...]}}
// Output: {status: "verified" | "not_verified" | "proof_only", reason}. "proof_only" means the
// proof holds but this browser has no Ed25519, so the signature was not checked.

// ledger/entries.py: entry hash = SHA-256(0x00 || VERSION_TAG || body).
const VERSION_TAG = new TextEncoder().encode("eldercare.ledger.v1\n");
// ledger/checkpoint.py: the domain string inside every signed checkpoint message.
const CHECKPOINT_DOMAIN = "eldercare.ledger.checkpoint.v1";
const KEY_ID_HEX = 32;
const utf8 = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) {
    throw new TypeError("expected lowercase hex");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

export function entryHash(bodyText) {
  return leafHash(concat(VERSION_TAG, utf8.encode(bodyText)));
}

function equal(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

// RFC 9162 section 2.1.3.2, step for step like ledger.merkle.verify_inclusion. Indices stay
// below 2**53, so plain numbers with Math.floor halving are exact (bitwise ops would cut at 2**31).
export async function verifyInclusion(leaf, index, size, proof, root) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let current = leaf;
  for (const sibling of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      current = await nodeHash(sibling, current);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      current = await nodeHash(current, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(current, root);
}

// The exact bytes ledger/checkpoint.py signs: canonical JSON, keys sorted, no whitespace.
// JSON.stringify escapes strings the way Python's json does with ensure_ascii=False.
export function checkpointMessage(cp) {
  const fields = {
    at: cp.at_ms,
    district: cp.district,
    domain: CHECKPOINT_DOMAIN,
    key: cp.key_id,
    next_key: cp.next_key_id ?? null,
    root: cp.root,
    size: cp.size,
  };
  return utf8.encode(JSON.stringify(fields));
}

let ed25519Support = null;

// Some browsers still lack Ed25519 in WebCrypto; ask once by importing a throwaway key.
export async function supportsEd25519() {
  if (ed25519Support === null) {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
      ed25519Support = true;
    } catch {
      ed25519Support = false;
    }
  }
  return ed25519Support;
}

async function verifySignature(publicHex, signatureHex, message) {
  const key = await crypto.subtle.importKey("raw", hexToBytes(publicHex), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(signatureHex), message);
}

async function keyIdOf(publicHex) {
  return bytesToHex(await sha256(hexToBytes(publicHex))).slice(0, KEY_ID_HEX);
}

// Which key may sign at which sizes, as KeyHistory.periods does; throws with the reason.
async function keyPeriods(history, trustedKeyId) {
  const keys = history?.keys ?? [];
  if (!keys.length) throw new Error("no public keys for the district");
  if (trustedKeyId && keys[0].key_id !== trustedKeyId) throw new Error("the first key is not the trusted one");
  if (keys[0].valid_from_size !== 0) throw new Error("the first key must be valid from size 0");
  for (const key of keys) {
    if ((await keyIdOf(key.public)) !== key.key_id) throw new Error(`key id ${key.key_id} does not match its public key`);
  }
  const periods = [];
  for (let i = 1; i < keys.length; i += 1) {
    const previous = keys[i - 1];
    const rotation = (history.rotations ?? []).find((cp) => cp.next_key_id === keys[i].key_id);
    if (!rotation || rotation.key_id !== previous.key_id || rotation.district !== history.district) {
      throw new Error(`no rotation by ${previous.key_id} names key ${keys[i].key_id}`);
    }
    if (!(await verifySignature(previous.public, rotation.signature, checkpointMessage(rotation)))) {
      throw new Error(`the rotation to key ${keys[i].key_id} has a bad signature`);
    }
    if (rotation.size !== keys[i].valid_from_size) throw new Error("a key's start differs from its rotation");
    periods.push({ key: previous, until: rotation.size });
  }
  periods.push({ key: keys.at(-1), until: null });
  return periods;
}

// RFC 9162 section 2.1.1: the root of the tree over `leaves` (leaf hashes), split at the
// largest power of two below the size, as ledger.merkle does. Empty: SHA-256 of nothing.
export async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0];
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return nodeHash(await merkleRoot(leaves.slice(0, split)), await merkleRoot(leaves.slice(split)));
}

// RFC 9162 section 2.1.4.2, step for step like ledger.merkle.verify_consistency: the tree of
// `newSize` leaves (root `newRoot`) extends the tree of `oldSize` leaves (root `oldRoot`).
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && oldSize >= 0 && oldSize <= newSize)) return false;
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot);
  // The empty tree is consistent with every tree.
  if (oldSize === 0) return proof.length === 0 && equal(oldRoot, await sha256(new Uint8Array(0)));
  if (proof.length === 0) return false;
  const path = Number.isInteger(Math.log2(oldSize)) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let oldAcc = path[0];
  let newAcc = path[0];
  for (const sibling of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      oldAcc = await nodeHash(sibling, oldAcc);
      newAcc = await nodeHash(sibling, newAcc);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      newAcc = await nodeHash(newAcc, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(oldAcc, oldRoot) && equal(newAcc, newRoot);
}

// A checker of checkpoint signatures against one district's key history (its rotations
// checked once): `check(cp)` answers {status: "verified" | "not_verified" | "proof_only",
// reason}, "proof_only" with "sig_unsupported" where this browser has no Ed25519.
export async function signatureChecker(keys, { trustedKeyId = null } = {}) {
  if (!(await supportsEd25519())) return async () => ({ status: "proof_only", reason: "sig_unsupported" });
  let periods;
  try {
    periods = await keyPeriods(keys, trustedKeyId);
  } catch (error) {
    const problem = String(error.message ?? error);
    return async () => ({ status: "not_verified", reason: "sig_bad", problem });
  }
  return async (cp) => {
    const fail = (reason) => ({ status: "not_verified", reason });
    if (keys.district !== cp.district) return fail("key_mismatch");
    const period = periods.find((p) => p.key.key_id === cp.key_id);
    if (!period) return fail("key_mismatch");
    if (cp.size < period.key.valid_from_size || (period.until !== null && cp.size > period.until)) return fail("key_mismatch");
    try {
      const signed = await verifySignature(period.key.public, cp.signature, checkpointMessage(cp));
      return signed ? { status: "verified", reason: "ok" } : fail("sig_bad");
    } catch (error) {
      return { status: "not_verified", reason: "sig_bad", problem: String(error.message ?? error) };
    }
  };
}

export async function verifyReceipt(receipt, { trustedKeyId = null } = {}) {
  const fail = (reason) => ({ status: "not_verified", reason });
  let entry;
  let cp;
  let proof;
  let root;
  try {
    entry = JSON.parse(receipt.entry);
    cp = receipt.checkpoint;
    proof = receipt.proof.map(hexToBytes);
    root = hexToBytes(cp.root);
  } catch (error) {
    return { status: "not_verified", reason: "malformed", problem: String(error.message ?? error) };
  }
  if (entry.seq !== receipt.index) return fail("index_mismatch");
  if (entry.district !== cp.district) return fail("district_mismatch");
  if (receipt.index >= cp.size) return fail("beyond_checkpoint");
  const leaf = await entryHash(receipt.entry);
  if (!(await verifyInclusion(leaf, receipt.index, cp.size, proof, root))) return fail("proof_bad");
  if (receipt.keys?.district !== cp.district) return (await supportsEd25519()) ? fail("key_mismatch") : { status: "proof_only", reason: "sig_unsupported" };
  return (await signatureChecker(receipt.keys, { trustedKeyId }))(cp);
}
