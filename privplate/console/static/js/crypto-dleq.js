// The officer's partial decryption D_i = x_i*R with its Chaum-Pedersen proof, exactly as
// privplate/threshold/dleq.py prove_partial makes it (same domain, same challenge framing), so
// the server's verify_partial accepts it and crypto/vectors/unseal.json reproduces.

import { sodiumNow } from "./crypto-sodium.js";
import { BASE_POINT, baseMul, checkPoint, hashToScalar, mul, randomScalar } from "./crypto-group.js";

const DOMAIN = new TextEncoder().encode("privplate/v1/unseal-dleq\0");

/**
 * D_i = x_i*R and a proof that log_B(X_i) = log_R(D_i), bound to ``context``.
 * ``nonce`` (the proof's k) is for test vectors only; normally it is drawn at random.
 * Returns {partial, c, s} as Uint8Arrays (the proof on the wire is c || s).
 */
export function provePartial(shareValue, ephemeral, context, nonce = undefined) {
  const sodium = sodiumNow();
  checkPoint(ephemeral, "evidence point R");
  const partial = mul(shareValue, ephemeral);
  const commitment = baseMul(shareValue);
  const k = nonce === undefined ? randomScalar() : nonce;
  try {
    const a1 = baseMul(k);
    const a2 = mul(k, ephemeral);
    const c = hashToScalar(DOMAIN, BASE_POINT, commitment, ephemeral, partial, a1, a2, context);
    const cx = sodium.crypto_core_ed25519_scalar_mul(c, shareValue);
    const s = sodium.crypto_core_ed25519_scalar_add(k, cx);
    sodium.memzero(cx);
    return { partial, c, s };
  } finally {
    // k and x_i together give x_i away: never leave a random nonce in memory.
    if (nonce === undefined) sodium.memzero(k);
  }
}
