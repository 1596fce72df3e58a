// The console's shell: sign-in, the routes (#/sessions, #/sessions/ID, #/contexts, #/contexts/ID,
// #/server) and the navigation.
import { apiKey, keyWorks, signIn, signOut, whenUnauthorized } from "./api.js";
import { contextFilesView, contextsView } from "./contexts.js";
import { h } from "./dom.js";
import { serverView } from "./server.js";
import { sessionView } from "./session.js";
import { sessionsView } from "./sessions.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
let cleanup = () => {};

function signInView(message) {
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "api-key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const error = h("p", { class: "error", id: "sign-in-error", role: "alert" }, message || "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to Cove"),
    h("p", { class: "muted" }, "An API key of this server (cove key create). It is kept in this tab only, until you sign out or close it."),
    h("label", {}, "API key", input),
    error,
    h("p", {}, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      if (await keyWorks(input.value.trim())) {
        signIn(input.value.trim());
        if (!window.location.hash || window.location.hash === "#/") window.location.hash = "#/sessions";
        route();
      } else {
        error.textContent = "This key was refused: check it and try again.";
        input.focus();
      }
    } catch (failure) {
      error.textContent = `The server could not be reached: ${failure.message}`;
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
  return () => {};
}

function route() {
  cleanup();
  const signedIn = Boolean(apiKey());
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  if (!signedIn) {
    cleanup = signInView();
    return;
  }
  const parts = (window.location.hash.replace(/^#\/?/, "") || "sessions").split("/").map(decodeURIComponent);
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === parts[0]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const views = {
    sessions: () => (parts[1] ? sessionView(main, parts[1]) : sessionsView(main)),
    contexts: () => (parts[1] ? contextFilesView(main, parts[1]) : contextsView(main)),
    server: () => serverView(main),
  };
  cleanup = (views[parts[0]] || views.sessions)() || (() => {});
  const heading = main.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

whenUnauthorized(() => {
  signOut();
  cleanup();
  cleanup = () => {};
  nav.hidden = true;
  signOutButton.hidden = true;
  cleanup = signInView("The key is no longer accepted: sign in again.");
});

signOutButton.addEventListener("click", () => {
  signOut();
  route();
});
window.addEventListener("hashchange", route);
route();
