"""Two-person unseal figures: seal time per 50 KB image, partial decryption + proof on an
officer's machine, and on the server verification + combination + decryption, for 2-of-3 and
3-of-5. Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable

from privplate.sealing import ecies
from privplate.threshold import Partial, combine_partials, prove_partial, split, verify_partial


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 50 if args.quick else 500
    x, public_key = ecies.generate_keypair()
    image = os.urandom(50_000)
    evidence_id = uuid.uuid4()
    p50, p95 = _timed(lambda: ecies.seal(image, public_key, evidence_id=evidence_id), runs)
    print(f"seal 50 KB image: p50 {p50:.3f} ms, p95 {p95:.3f} ms (goal <= 1 ms)")
    blob = ecies.seal(image, public_key, evidence_id=evidence_id)
    ephemeral = ecies.parse_sealed(blob).ephemeral
    context = b"privplate/v1/unseal-request\x00" + uuid.uuid4().bytes * 3
    for n, t in ((3, 2), (5, 3)):
        shares = split(x, shares=n, threshold=t)
        made = [(s, *prove_partial(s.value, ephemeral, context)) for s in shares[:t]]
        p50, p95 = _timed(lambda s=shares[0]: prove_partial(s.value, ephemeral, context), runs)
        print(f"{t}-of-{n}: partial + proof (officer): p50 {p50:.3f} ms, p95 {p95:.3f} ms")

        def server(made: list[tuple[object, bytes, object]] = made, t: int = t) -> bytes:
            partials = []
            for share, value, proof in made:
                verify_partial(share.commitment, ephemeral, value, proof, context)
                partials.append(Partial(share.index, value))
            shared = combine_partials(partials, t)
            return ecies.open_with_shared_point(blob, shared, public_key, evidence_id=evidence_id)

        if server() != image:
            raise SystemExit("combination did not reproduce the image")
        p50, p95 = _timed(server, runs)
        print(
            f"{t}-of-{n}: verify {t} proofs + combine + decrypt 50 KB (server): "
            f"p50 {p50:.3f} ms, p95 {p95:.3f} ms"
        )


if __name__ == "__main__":
    main()
