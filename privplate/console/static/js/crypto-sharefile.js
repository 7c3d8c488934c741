// Opening an officer's share file in the browser, as privplate/ceremony/sharefile.py does:
// Argon2id (crypto_pwhash, ALG_ARGON2ID13) with the file's opslimit, memlimit and salt, then
// SecretBox laid out the PyNaCl way (box = nonce(24) || ciphertext), then the share checked
// against its published commitment X_i = x_i*B.

import { sodiumNow } from "./crypto-sodium.js";
import { ApproveError, baseMul, checkPoint, checkScalar, fromHex, toHex } from "./crypto-group.js";

const FORMAT = "privplate-evidence-share";
// The CLI's "sensitive" strength: a file asking for more is not one privplate wrote, and
// would only make the browser allocate (or hang on) an absurd Argon2 cost.
const MAX_OPSLIMIT = 4;
const MAX_MEMLIMIT = 1024 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function malformed(why) {
  return new ApproveError(`this is not a privplate share file (${why})`);
}

function positiveInt(value, what) {
  if (!Number.isSafeInteger(value) || value < 1) throw malformed(`bad ${what}`);
  return value;
}

/** Parse and check a share file (JSON text or object) without opening it. */
export function parseShareFile(json) {
  let data = json;
  if (typeof json === "string") {
    try {
      data = JSON.parse(json);
    } catch {
      throw malformed("not JSON");
    }
  }
  if (data === null || typeof data !== "object" || data.format !== FORMAT) {
    throw malformed("wrong format");
  }
  if (data.version !== 1) throw malformed("unknown version");
  const kdf = data.kdf;
  if (kdf === null || typeof kdf !== "object" || kdf.alg !== "argon2id13") {
    throw malformed("unknown key derivation");
  }
  const sodium = sodiumNow();
  const salt = fromHex(kdf.salt, "the salt");
  if (salt.length !== sodium.crypto_pwhash_SALTBYTES) throw malformed("bad salt");
  const opslimit = positiveInt(kdf.opslimit, "opslimit");
  const memlimit = positiveInt(kdf.memlimit, "memlimit");
  if (opslimit > MAX_OPSLIMIT || memlimit > MAX_MEMLIMIT) {
    throw malformed("key-derivation cost above the strongest privplate writes");
  }
  let box;
  try {
    box = sodium.from_base64(String(data.box), sodium.base64_variants.ORIGINAL);
  } catch {
    throw malformed("the encrypted share is not base64");
  }
  const minimum = sodium.crypto_secretbox_NONCEBYTES + sodium.crypto_secretbox_MACBYTES;
  if (box.length < minimum) throw malformed("the encrypted share is too short");
  const ceremony = String(data.ceremony).toLowerCase();
  if (!UUID.test(ceremony)) throw malformed("bad ceremony id");
  const index = positiveInt(data.index, "index");
  const threshold = positiveInt(data.threshold, "threshold");
  const officers = positiveInt(data.officers, "officers");
  if (index > officers || threshold > officers) throw malformed("inconsistent officer counts");
  return {
    ceremony,
    officer: String(data.officer),
    index,
    threshold,
    officers,
    publicKey: checkPoint(fromHex(data.public_key, "the public key"), "the file's public key"),
    commitment: checkPoint(fromHex(data.commitment, "the commitment"), "the file's commitment"),
    opslimit,
    memlimit,
    salt,
    box,
  };
}

/**
 * Refuse a share file made for another key (the CLI's check before it asks the passphrase).
 * ``expected`` may give publicKey (hex) and shareSetId (UUID); absent ones are not checked.
 */
export function checkShareFileFor(shareFile, expected) {
  if (expected.publicKey !== undefined) {
    if (toHex(shareFile.publicKey) !== String(expected.publicKey).toLowerCase()) {
      throw new ApproveError("this share file belongs to another evidence key");
    }
  }
  if (expected.shareSetId !== undefined) {
    if (shareFile.ceremony !== String(expected.shareSetId).toLowerCase()) {
      throw new ApproveError(
        "this share file is from another key ceremony (its shares no longer count here)",
      );
    }
  }
}

/**
 * Open a share file with its passphrase: {index, value, ceremony, officer, threshold,
 * officers, publicKey, commitment}. ``value`` is the secret share x_i: the caller must
 * sodium.memzero it once done. ``expected`` is as for checkShareFileFor, checked first.
 */
export function openShare(shareFileJson, passphrase, expected = {}) {
  const sodium = sodiumNow();
  const file = parseShareFile(shareFileJson);
  checkShareFileFor(file, expected);
  const secret = new TextEncoder().encode(String(passphrase)); // as Python's str.encode()
  let key;
  try {
    key = sodium.crypto_pwhash(
      sodium.crypto_secretbox_KEYBYTES,
      secret,
      file.salt,
      file.opslimit,
      file.memlimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13,
    );
  } catch {
    throw new ApproveError(
      "could not derive the share key (out of memory, or the file's key-derivation settings " +
        "are invalid)",
    );
  } finally {
    sodium.memzero(secret);
  }
  let value;
  try {
    const nonce = file.box.subarray(0, sodium.crypto_secretbox_NONCEBYTES);
    const ciphertext = file.box.subarray(sodium.crypto_secretbox_NONCEBYTES);
    value = sodium.crypto_secretbox_open_easy(ciphertext, nonce, key);
  } catch {
    throw new ApproveError("wrong passphrase for this share file (or the file was altered)");
  } finally {
    sodium.memzero(key);
  }
  let problem = null;
  try {
    checkScalar(value, "the share");
  } catch {
    problem = "the share in this file is not a valid scalar; the file is corrupt";
  }
  if (problem === null && !sodium.memcmp(baseMul(value), file.commitment)) {
    problem = "the share does not match its commitment; the file is corrupt";
  }
  if (problem !== null) {
    sodium.memzero(value);
    throw new ApproveError(problem);
  }
  return {
    index: file.index,
    value,
    ceremony: file.ceremony,
    officer: file.officer,
    threshold: file.threshold,
    officers: file.officers,
    publicKey: file.publicKey,
    commitment: file.commitment,
  };
}
