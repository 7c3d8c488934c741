// The plate search is sent with fetch(), never as a page navigation: Chromium keeps the POST
// body of a navigation in the tab's session history (the profile's "Sessions" files) so that
// it can re-post it on restore, and that body holds the plate. A fetch leaves nothing there;
// the server's answer page (the same HTML a navigation would get) replaces this page's <main>.
// The server refuses a navigation POST of the search for that reason.

const FORM_ID = "search-form";

function focusAnswer(main) {
  // Keyboard and screen-reader users land on what changed: the refusal, or the answer.
  const target = main.querySelector('[role="alert"], #answer-h');
  if (target instanceof HTMLElement) {
    target.setAttribute("tabindex", "-1");
    target.focus();
  }
}

function say(main, text) {
  let box = main.querySelector("#search-progress");
  if (box === null) {
    box = document.createElement("p");
    box.id = "search-progress";
    box.setAttribute("role", "status");
    main.querySelector("form")?.before(box);
  }
  box.textContent = text;
}

function bind(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const main = document.querySelector("main");
    if (main === null || main.getAttribute("aria-busy") === "true") return;
    const body = new URLSearchParams(new FormData(form));
    const plate = form.elements.namedItem("plate");
    if (plate instanceof HTMLInputElement) plate.value = ""; // not kept in the page either
    main.setAttribute("aria-busy", "true");
    say(main, "Searching…");
    let answer;
    try {
      answer = await fetch(form.action, {
        method: "POST",
        body,
        credentials: "same-origin",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch {
      main.removeAttribute("aria-busy");
      say(main, "Could not reach the server; nothing was searched. Try again.");
      return;
    }
    if (answer.redirected) {
      // Signed out meanwhile: the guard sent the sign-in page.
      window.location.assign(answer.url);
      return;
    }
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.querySelector("main");
    if (fresh === null) {
      main.removeAttribute("aria-busy");
      say(main, "The server's answer could not be shown; try again.");
      return;
    }
    const adopted = document.adoptNode(fresh);
    main.replaceWith(adopted);
    document.title = page.title;
    const again = adopted.querySelector(`#${FORM_ID}`);
    if (again instanceof HTMLFormElement) bind(again);
    focusAnswer(adopted);
  });
}

function bindPage() {
  const form = document.getElementById(FORM_ID);
  if (form instanceof HTMLFormElement) bind(form);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bindPage);
else bindPage();
