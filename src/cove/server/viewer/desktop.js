// The desktop viewer: noVNC's RFB client on the WebSocket beside this page, scaled to the window.
// View-only unless the page's URL is the interactive one; the server holds that line too.
import RFB from "./novnc/core/rfb.js";

const body = document.body;
const status = document.getElementById("status");
const interactive = body.dataset.interactive === "true";
const socketUrl = new URL("websockify", window.location.href);
socketUrl.protocol = socketUrl.protocol === "https:" ? "wss:" : "ws:";
socketUrl.search = "";

function show(state, text) {
  body.dataset.state = state;
  status.textContent = text;
}

const rfb = new RFB(document.getElementById("screen"), socketUrl.href);
rfb.viewOnly = !interactive;
rfb.scaleViewport = true;
rfb.background = "#1e1e1e";
rfb.addEventListener("connect", () => show("connected", interactive ? "connected" : "view only"));
rfb.addEventListener("disconnect", (event) =>
  show("disconnected", event.detail.clean ? "disconnected" : "connection lost; reload to try again"),
);
