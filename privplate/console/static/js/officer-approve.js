// The browser's `privplate officer approve`: the officer's share file is opened and the
// partial decryption with its proof computed here, in the page; only the share index, the
// partial and the proof (with the form's CSRF token) are posted. The share file and the
// passphrase have no name attribute, so the form can never submit them.
//
// Exports pure functions (used by the page binding below and by the tests) and binds itself
// to <form id="officer-approve"> when the page has one.

import { loadSodium, sodiumNow } from "./crypto-sodium.js";
import { ApproveError, checkPoint, concat, fromHex, toHex } from "./crypto-group.js";
import { openShare } from "./crypto-sharefile.js";
import { provePartial } from "./crypto-dleq.js";

export { ApproveError, fromHex, openShare, provePartial, toHex };

const CONTEXT_DOMAIN = new TextEncoder().encode("privplate/v1/unseal-request\0");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Resolves once libsodium is initialised; every other export needs it. */
export async function ready() {
  await loadSodium();
}

function uuidBytes(text, what) {
  if (typeof text !== "string" || !UUID.test(text)) throw new ApproveError(`${what} is not a UUID`);
  return fromHex(text.replaceAll("-", ""), what); // the 16 bytes of Python's UUID.bytes
}

/** What every partial's proof is bound to: this request, this item, this share set
 * (privplate.unseal.workflow.request_context). */
export function requestContext(requestId, evidenceId, shareSetId) {
  return concat(
    CONTEXT_DOMAIN,
    uuidBytes(requestId, "the request id"),
    uuidBytes(evidenceId, "the evidence id"),
    uuidBytes(shareSetId, "the share set id"),
  );
}

/**
 * Everything the form posts besides its CSRF token, from the share file's text, the
 * passphrase and the request as the page describes it (the form's data-* attributes):
 * {shareIndex, partial, proof} as decimal/hex strings. The share is zeroed before returning.
 */
export function approval(shareFileText, passphrase, request) {
  const ephemeral = checkPoint(fromHex(request.ephemeral, "the evidence point R"), "evidence point R");
  const context = requestContext(request.requestId, request.evidenceId, request.shareSetId);
  const share = openShare(shareFileText, passphrase, {
    publicKey: request.publicKey,
    shareSetId: request.shareSetId,
  });
  try {
    const { partial, c, s } = provePartial(share.value, ephemeral, context);
    return { shareIndex: String(share.index), partial: toHex(partial), proof: toHex(c) + toHex(s) };
  } finally {
    sodiumNow().memzero(share.value);
  }
}

// Give the browser a chance to paint the status before Argon2 blocks the main thread.
function paint() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
  });
}

const bound = new WeakSet();

/** Wire the approve form: compute the approval in the page, then submit only its result. */
export function bindApproveForm(form) {
  if (bound.has(form)) return;
  bound.add(form);
  const status = form.querySelector("#approve-status");
  const fileInput = form.querySelector("#share-file");
  const passInput = form.querySelector("#share-passphrase");
  const button = form.querySelector('button[type="submit"]');
  const say = (text) => {
    status.textContent = text;
  };
  ready().catch(() => {}); // start loading now; a failure is reported on submit
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    let submitted = false;
    try {
      const file = fileInput.files[0];
      if (file === undefined) throw new ApproveError("choose your share file first");
      // A share file is about 1 KB; refuse to read a large file chosen by mistake.
      if (file.size > 64 * 1024) throw new ApproveError("this is not a privplate share file");
      if (passInput.value === "") throw new ApproveError("type the passphrase of your share file");
      say("Loading the cryptography library…");
      try {
        await ready();
      } catch {
        throw new ApproveError("could not load the cryptography library; reload the page");
      }
      const text = await file.text();
      const passphrase = passInput.value;
      passInput.value = "";
      say("Opening your share file (this takes a few seconds)…");
      await paint();
      const result = approval(text, passphrase, {
        requestId: form.dataset.requestId,
        evidenceId: form.dataset.evidenceId,
        shareSetId: form.dataset.shareSetId,
        ephemeral: form.dataset.ephemeral,
        publicKey: form.dataset.publicKey,
      });
      form.elements.namedItem("share_index").value = result.shareIndex;
      form.elements.namedItem("partial").value = result.partial;
      form.elements.namedItem("proof").value = result.proof;
      fileInput.value = "";
      say("Approval computed; sending it (your share stays on this computer)…");
      submitted = true;
      form.submit(); // does not fire "submit" again
    } catch (error) {
      say(
        error instanceof ApproveError
          ? `Not approved: ${error.message}.`
          : "Not approved: something went wrong while computing the approval in this browser.",
      );
    } finally {
      passInput.value = "";
      if (!submitted) {
        busy = false;
        button.disabled = false;
      }
    }
  });
}

function bindPage() {
  const form = document.getElementById("officer-approve");
  if (form instanceof HTMLFormElement) bindApproveForm(form);
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bindPage);
  else bindPage();
}
