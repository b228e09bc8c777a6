// Checking a stretch of a district's chain in the browser, as `ledger.verify` does on the
// server, trusting nothing the server says about it: each entry's stored bytes must be the
// canonical encoding of what they say (and of the fields the explorer shows), are hashed here
// (SHA-256 of 0x00 || version tag || bytes, ledger/entries.py), each entry must link to the
// hash of the one before (`prev`, 32 zero bytes before seq 0) and the seqs must follow each
// other without a gap. Merkle roots, proofs and signatures are in verify.js.
//
// `checkEntries` answers one verdict per entry, in seq order: {seq, leaf, problem}, `leaf` the
// hash computed here and `problem` null or {code, seq}. A broken link is blamed on the entry
// whose bytes do not hash to the hash the server gave for it, when there is one, so one
// altered entry names its own seq and not also the next one's.

import { bytesToHex, entryHash } from "./verify.js";

const ZERO_PREV = "0".repeat(64);
const ENTRY_VERSION = 1;
// The explorer's columns and the body's keys they come from (ledger_reads.entry_json).
const SHOWN_FIELDS = [
  ["district", "district"],
  ["seq", "seq"],
  ["id", "id"],
  ["kind", "kind"],
  ["debit", "debit"],
  ["credit", "credit"],
  ["minutes", "minutes"],
  ["category", "category"],
  ["ref", "ref"],
  ["actor", "actor"],
  ["policy", "policy"],
  ["at_ms", "at"],
];

// ledger/canonical.py: keys sorted, no whitespace, strings in NFC, safe integers only. Keys are
// ASCII here, so sorting UTF-16 code units sorts code points as Python does.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError("not a safe integer");
    return String(value);
  }
  if (typeof value === "string") {
    if (value.normalize("NFC") !== value) throw new TypeError("text not in Unicode NFC");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${canonicalJson(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}

function sameValue(a, b) {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

// What is wrong with one entry on its own (its bytes against what it claims), or null.
function ownProblem(entry, body, chain, expectedSeq) {
  if (body === null) return "not_json";
  let canonical;
  try {
    canonical = canonicalJson(body);
  } catch {
    return "not_canonical";
  }
  if (canonical !== entry.body) return "not_canonical";
  if (body.v !== ENTRY_VERSION) return "bad_version";
  if (body.district !== chain) return "wrong_district";
  if (body.seq !== expectedSeq || entry.seq !== expectedSeq) return "seq_gap";
  for (const [shown, key] of SHOWN_FIELDS) {
    if (!sameValue(entry[shown], body[key])) return "fields_differ";
  }
  if (!sameValue(entry.meta ?? {}, body.meta)) return "fields_differ";
  return null;
}

function parse(text) {
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

// `entries` in seq order from `entries[0].seq`; `previous` is the verdict of the entry just
// before (null from seq 0, or when the stretch's first link cannot be checked here).
export async function checkEntries(entries, chain, { previous = null } = {}) {
  const out = [];
  let before = previous;
  let expectedSeq = entries.length ? entries[0].seq : 0;
  for (const entry of entries) {
    const text = typeof entry.body === "string" ? entry.body : "";
    const body = parse(text);
    const leaf = await entryHash(text);
    const hex = bytesToHex(leaf);
    let code = ownProblem(entry, body, chain, expectedSeq);
    if (code === null && entry.hash !== hex) code = "hash_mismatch";
    if (code === null) {
      const linked = expectedSeq === 0 ? ZERO_PREV : before ? bytesToHex(before.leaf) : null;
      // The previous entry's own fault when this links to the hash the server gave for it.
      const blamedBefore = before?.problem && body.prev === before.claimed;
      if (linked !== null && body.prev !== linked && !blamedBefore) code = "prev_mismatch";
    }
    // A gap is named at the seq that is missing, as the Python verifier names it.
    const problemSeq = code === "seq_gap" ? expectedSeq : entry.seq;
    const verdict = { seq: entry.seq, leaf, claimed: entry.hash, problem: code ? { code, seq: problemSeq } : null };
    out.push(verdict);
    before = verdict;
    // After a gap, count on from the entry found, so the gap is named once.
    expectedSeq = (Number.isSafeInteger(entry.seq) ? entry.seq : expectedSeq) + 1;
  }
  return out;
}
