// The explorer's "verify": the real verification over what it loads, in this browser.
//
// Entries on screen (`verifyEntries`): the latest signed checkpoint's signature (key history
// from the first key); every entry's bytes, hash, link and seq (chain.js). Up to WHOLE_CHAIN
// entries the chain is loaded from seq 0 to the checkpoint and its Merkle root recomputed:
// every entry up to the checkpoint is then proven at once. A longer chain, or a root that
// does not match, is checked entry by entry with inclusion proofs, from the entry before the
// page so the page's first link is checked too. Entries after the checkpoint are linked but
// not yet provable ("pending").
// Checkpoints on screen (`verifyHistory`): each signature, and a consistency proof between
// each one and the next (the newest shown and the latest too): the log only ever grew.
//
// Each answers per-row results ({status, reason}, as verifymark.js renders them) and `failed`:
// the first thing that did not verify ({seq} or {size}, and the reason), or null.

import * as api from "../api.js";
import { checkEntries } from "../chain.js";
import { bytesToHex, hexToBytes, merkleRoot, signatureChecker, verifyConsistency, verifyInclusion } from "../verify.js";

// The entries API answers at most 500 per request.
const FETCH = 500;
// Up to this many entries, the whole chain is fetched (ten requests) and its root recomputed.
const WHOLE_CHAIN = 5000;

export const chainPath = (chain) => `/api/v1/ledger/districts/${encodeURIComponent(chain)}`;

// Entries [start, end) of a chain, fetched in pages of at most FETCH.
export async function entryRange(chain, start, end, onProgress = () => {}) {
  const out = [];
  for (let from = start; from < end; from += FETCH) {
    const page = await api.get(`${chainPath(chain)}/entries?start=${from}&end=${Math.min(end, from + FETCH)}`);
    out.push(...page.entries);
    onProgress(out.length);
  }
  return out;
}

const ok = (reason, notes) => ({ status: "verified", reason, notes });
const bad = (reason) => ({ status: "not_verified", reason });

async function latestSigned(chain) {
  const [{ history }, latest] = await Promise.all([api.get(`${chainPath(chain)}/keys`), api.get(`${chainPath(chain)}/checkpoint`)]);
  const cp = latest.checkpoint;
  const check = await signatureChecker(history);
  return { cp, signature: await check(cp) };
}

// A chain with entries but no signed checkpoint yet: its entries can still be checked (bytes,
// hashes, links), and each is pending until a checkpoint covers it.
async function latestSignedOrNone(chain) {
  try {
    return await latestSigned(chain);
  } catch (error) {
    if (error?.code === "ledger.no_checkpoint") return null;
    throw error;
  }
}

async function verifyUnsigned(chain, shown) {
  const start = shown[0].seq;
  const anchor = start > 0 ? await entryRange(chain, start - 1, start) : [];
  const verdicts = await checkEntries([...anchor, ...shown], chain);
  const onScreen = verdicts.filter((v) => v.seq >= start);
  const rows = new Map(onScreen.map((v) => [v.seq, v.problem ? bad(v.problem.code) : { status: "pending", reason: "pending" }]));
  const broken = verdicts.find((v) => v.problem);
  const pending = [...rows.values()].filter((r) => r.status === "pending").length;
  return { rows, failed: broken ? { seq: broken.problem.seq, reason: broken.problem.code } : null, checkpoint: null, signature: null, whole: false, pending };
}

// Inclusion proofs of the entries below the checkpoint, against its signed root.
async function proveEach(chain, verdicts, cp) {
  const root = hexToBytes(cp.root);
  const proven = new Map();
  for (const v of verdicts) {
    if (v.problem || v.seq >= cp.size) continue;
    const { proof } = await api.get(`${chainPath(chain)}/proof?seq=${v.seq}&size=${cp.size}`);
    proven.set(v.seq, await verifyInclusion(v.leaf, v.seq, cp.size, proof.map(hexToBytes), root));
  }
  return proven;
}

function rowResult(v, cp, signature, proven) {
  if (v.problem) return bad(v.problem.code);
  if (v.seq >= cp.size) return { status: "pending", reason: "pending" };
  if (proven === true) return signature.status === "verified" ? ok("ok", ["verify.root_ok", "verify.sig_ok"]) : signature;
  if (!proven.get(v.seq)) return bad("proof_bad");
  return signature.status === "verified" ? ok("ok", ["verify.proof_ok", "verify.sig_ok"]) : signature;
}

function firstFailure(verdicts, rows, { cp, signature, rootMatches }) {
  const broken = verdicts.find((v) => v.problem);
  if (broken) return { seq: broken.problem.seq, reason: broken.problem.code };
  const unproven = [...rows].find(([, r]) => r.reason === "proof_bad");
  if (unproven) return { seq: unproven[0], reason: "proof_bad" };
  if (rootMatches === false) return { size: cp.size, reason: "root_mismatch" };
  if (signature.status === "not_verified") return { size: cp.size, reason: signature.reason };
  return null;
}

// `shown`: the entries on screen, in seq order. `wholeChain`: up to how many entries the
// chain is loaded from seq 0 (a test lowers it to take the inclusion-proof path).
export async function verifyEntries(chain, shown, { wholeChain = WHOLE_CHAIN } = {}) {
  const signed = await latestSignedOrNone(chain);
  if (signed === null) return verifyUnsigned(chain, shown);
  const { cp, signature } = signed;
  const start = shown[0].seq;
  const end = shown.at(-1).seq + 1;
  const onScreen = (v) => v.seq >= start && v.seq < end;
  let verdicts;
  let proven = true;
  let rootMatches = null;
  // Whole from seq 0 only while everything fetched stays small: a short checkpoint far behind
  // a long chain's newest page takes the proof path instead.
  if (cp.size <= wholeChain && end <= wholeChain) {
    const before = await entryRange(chain, 0, start);
    const after = end < cp.size ? await entryRange(chain, end, cp.size) : [];
    verdicts = await checkEntries([...before, ...shown, ...after], chain);
    const root = bytesToHex(await merkleRoot(verdicts.slice(0, cp.size).map((v) => v.leaf)));
    rootMatches = verdicts.length >= cp.size && root === cp.root;
    // A root that does not match says the chain is wrong, not where: ask each entry's proof.
    if (!rootMatches) proven = await proveEach(chain, verdicts.filter(onScreen), cp);
  } else {
    const anchor = start > 0 ? await entryRange(chain, start - 1, start) : [];
    verdicts = await checkEntries([...anchor, ...shown], chain);
    // The anchor only links the first entry on screen; proofs are for the entries shown.
    proven = await proveEach(chain, verdicts.filter(onScreen), cp);
  }
  const rows = new Map(verdicts.filter(onScreen).map((v) => [v.seq, rowResult(v, cp, signature, proven)]));
  const pending = [...rows.values()].filter((r) => r.status === "pending").length;
  const failed = firstFailure(verdicts, rows, { cp, signature, rootMatches });
  return { rows, failed, checkpoint: cp, signature, whole: rootMatches !== null, pending };
}

// `list`: the checkpoints on screen, oldest first; `latest`: the latest signed one. A failed
// consistency proof is told on the newer checkpoint of the two (the older when the newer is
// the latest, off this page).
export async function verifyHistory(chain, list, latest) {
  const { history } = await api.get(`${chainPath(chain)}/keys`);
  const check = await signatureChecker(history);
  const all = latest && list.length && list.at(-1).size < latest.size ? [...list, latest] : list;
  const rows = new Map();
  for (const cp of list) rows.set(cp.size, await check(cp));
  for (let i = 1; i < all.length; i += 1) {
    const [older, newer] = [all[i - 1], all[i]];
    const { proof } = await api.get(`${chainPath(chain)}/consistency?old=${older.size}&new=${newer.size}`);
    const consistent = await verifyConsistency(older.size, newer.size, hexToBytes(older.root), hexToBytes(newer.root), proof.map(hexToBytes));
    const blamed = rows.has(newer.size) ? newer.size : older.size;
    if (!consistent) rows.set(blamed, bad("consistency_bad"));
  }
  for (const [size, result] of rows) {
    if (result.status === "verified") rows.set(size, ok("ok", all.length > 1 ? ["verify.sig_ok", "verify.consistent"] : ["verify.sig_ok"]));
  }
  const first = [...rows].find(([, r]) => r.status === "not_verified");
  return { rows, failed: first ? { size: first[0], reason: first[1].reason } : null };
}
