// Ed25519 group arithmetic for the browser, mirroring privplate/sealing/group.py byte for byte:
// scalars are 32-byte little-endian integers mod l, points 32-byte compressed Edwards points
// in the prime-order subgroup, and every input is checked before libsodium sees it.

import { sodiumNow } from "./crypto-sodium.js";

export const SCALAR_BYTES = 32;
export const POINT_BYTES = 32;
/** l, the order of the prime-order subgroup. */
export const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
/** B, the Ed25519 base point (compressed). */
export const BASE_POINT = fromHex(
  "5866666666666666666666666666666666666666666666666666666666666666",
);

/** An error whose message is fit to show the officer as is (never holds secret material). */
export class ApproveError extends Error {
  constructor(message) {
    super(message);
    this.name = "ApproveError";
  }
}

/** Strict hex decoding: an even number of hex digits, nothing else. */
export function fromHex(text, what = "value") {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new ApproveError(`${what} is not valid hex`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function scalarToBigInt(scalar) {
  let value = 0n;
  for (let i = scalar.length - 1; i >= 0; i -= 1) value = (value << 8n) | BigInt(scalar[i]);
  return value;
}

/** Refuse anything that is not a prime-order-subgroup point (no small-order tricks). */
export function checkPoint(point, what) {
  if (
    !(point instanceof Uint8Array) ||
    point.length !== POINT_BYTES ||
    !sodiumNow().crypto_core_ed25519_is_valid_point(point)
  ) {
    throw new ApproveError(`${what} is not a valid Ed25519 group element`);
  }
  return point;
}

/** Refuse non-canonical scalars: libsodium would silently drop bit 255 of one >= l. */
export function checkScalar(scalar, what = "scalar") {
  if (!(scalar instanceof Uint8Array) || scalar.length !== SCALAR_BYTES) {
    throw new ApproveError(`${what} must be 32 bytes`);
  }
  const value = scalarToBigInt(scalar);
  if (value === 0n || value >= GROUP_ORDER) {
    throw new ApproveError(`${what} must encode an integer in [1, l)`);
  }
  return scalar;
}

/** scalar * B without clamping (true group arithmetic, as the Lagrange combination needs). */
export function baseMul(scalar) {
  checkScalar(scalar);
  try {
    return sodiumNow().crypto_scalarmult_ed25519_base_noclamp(scalar);
  } catch {
    throw new ApproveError("scalar is zero or invalid");
  }
}

/** scalar * point without clamping; libsodium refuses a result that is the identity. */
export function mul(scalar, point) {
  checkScalar(scalar);
  try {
    return sodiumNow().crypto_scalarmult_ed25519_noclamp(scalar, point);
  } catch {
    throw new ApproveError("scalar multiplication gave the identity (invalid scalar or point)");
  }
}

/** Uniform scalar in [1, l) from libsodium's CSPRNG (crypto.getRandomValues underneath). */
export function randomScalar() {
  return sodiumNow().crypto_core_ed25519_scalar_random();
}

/** SHA-512 of the parts, each prefixed by its length as u64 little-endian, reduced mod l. */
export function hashToScalar(...parts) {
  const framed = [];
  for (const part of parts) {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(part.length), true);
    framed.push(length, part);
  }
  const sodium = sodiumNow();
  return sodium.crypto_core_ed25519_scalar_reduce(sodium.crypto_hash_sha512(concat(...framed)));
}
