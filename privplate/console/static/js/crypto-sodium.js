// Loads libsodium into the page and hands out the ready instance.
//
// The vendored libsodium is the UMD build, run by classic <script src> elements that this
// module adds: the ESM build of libsodium-wrappers imports "libsodium-sumo" by bare name,
// which only an import map could resolve, and an import map is an inline script, which the
// console's CSP (script-src 'self' 'wasm-unsafe-eval') forbids. The UMD files define
// window.libsodium then window.sodium; neither needs eval, only WebAssembly compilation.

const FILES = [
  "../vendor/libsodium-sumo/libsodium-sumo.js",
  "../vendor/libsodium-wrappers-sumo/libsodium-wrappers.js",
];

let loading = null;
let instance = null;

function addScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.async = false; // run in order: the wrappers need window.libsodium
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("could not load the cryptography library"));
    document.head.append(script);
  });
}

/** Resolves to the initialised libsodium (loads it on first call; later calls share it). */
export function loadSodium() {
  if (loading === null) {
    loading = (async () => {
      if (globalThis.sodium === undefined) {
        // Relative to this module, so the console may mount its static files anywhere.
        for (const file of FILES) await addScript(new URL(file, import.meta.url).href);
      }
      if (globalThis.sodium === undefined || globalThis.sodium.ready === undefined) {
        // The libsodium script ran but failed, e.g. a policy without 'wasm-unsafe-eval'.
        throw new Error("libsodium did not initialise (is WebAssembly allowed?)");
      }
      await globalThis.sodium.ready;
      instance = globalThis.sodium;
      return instance;
    })();
    loading.catch(() => {
      loading = null; // let a later attempt retry (e.g. after a network blip)
    });
  }
  return loading;
}

/** The initialised libsodium, for synchronous code that runs after loadSodium() resolved. */
export function sodiumNow() {
  if (instance === null) throw new Error("libsodium is not initialised: await ready() first");
  return instance;
}
