// Contexts: the key's persistent storage, their files (browse, download, delete), and deleting them.
import { call } from "./api.js";
import { bytes, h, toast } from "./dom.js";

export function contextsView(main) {
  const rows = h("tbody", { id: "context-rows" });
  async function load() {
    try {
      const contexts = [];
      for (let page = 1; page; ) {
        const answer = await call("GET", "/v1/contexts", { query: { page, limit: 1000 } });
        contexts.push(...answer.contexts);
        page = answer.next_page;
      }
      rows.replaceChildren(
        ...contexts.map((context) =>
          h(
            "tr",
            { dataset: { contextId: context.id } },
            h("td", {}, h("a", { href: `#/contexts/${encodeURIComponent(context.id)}` }, context.name)),
            h("td", { class: "mono" }, context.id),
            h("td", {}, context.state),
            h("td", {}, new Date(context.created_at).toLocaleString()),
            h("td", {}, context.last_used_at ? new Date(context.last_used_at).toLocaleString() : ""),
            h(
              "td",
              {},
              h("button", {
                type: "button",
                class: "danger",
                "aria-label": `Delete context ${context.name}`,
                onclick: async () => {
                  if (!window.confirm(`Delete the context ${context.name} and all its files?`)) return;
                  try {
                    await call("DELETE", `/v1/contexts/${encodeURIComponent(context.id)}`);
                    load();
                  } catch (error) {
                    toast(error.message, true);
                  }
                },
              }, "Delete"),
            ),
          ),
        ),
      );
      if (!contexts.length) rows.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "This key has no contexts.")));
    } catch (error) {
      toast(error.message, true);
    }
  }
  const table = h(
    "table",
    { "aria-label": "Contexts" },
    h("thead", {}, h("tr", {}, ["Name", "ID", "State", "Created", "Last used", ""].map((name) => h("th", { scope: "col" }, name)))),
    rows,
  );
  main.replaceChildren(h("h1", {}, "Contexts"), h("div", { class: "card" }, table));
  load();
}

export function contextFilesView(main, contextId) {
  const base = `/v1/contexts/${encodeURIComponent(contextId)}`;
  const heading = h("h1", {}, "Context ", h("span", { class: "mono", id: "context-name" }, contextId));
  const where = h("p", { class: "mono", id: "context-path" });
  const rows = h("tbody", { id: "context-file-rows" });
  async function list(path) {
    try {
      const files = [];
      for (let page = 1; page; ) {
        const answer = await call("GET", `${base}/files`, { query: { path, page, limit: 1000 } });
        files.push(...answer.files);
        page = answer.next_page;
      }
      const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
      where.replaceChildren(
        `/${path}`,
        path ? " " : "",
        path ? h("button", { type: "button", onclick: () => list(parent) }, "Up") : "",
      );
      rows.replaceChildren(
        ...files.map((file) => {
          const isFolder = file.type === "folder";
          const actions = [];
          if (!isFolder) {
            actions.push(h("button", {
              type: "button",
              "aria-label": `Download ${file.name}`,
              onclick: async () => {
                try {
                  const answer = await call("POST", `${base}/download_url`, { query: { path: file.path } });
                  const link = h("a", { href: answer.url, download: file.name });
                  document.body.append(link);
                  link.click();
                  link.remove();
                } catch (error) {
                  toast(error.message, true);
                }
              },
            }, "Download"));
          }
          actions.push(h("button", {
            type: "button",
            class: "danger",
            "aria-label": `Delete ${file.name}`,
            onclick: async () => {
              if (!window.confirm(`Delete ${file.path}${isFolder ? " and everything in it" : ""}?`)) return;
              try {
                await call("DELETE", `${base}/files`, { query: { path: file.path } });
                list(path);
              } catch (error) {
                toast(error.message, true);
              }
            },
          }, "Delete"));
          return h(
            "tr",
            { dataset: { name: file.name } },
            h("td", {}, isFolder ? h("a", { href: "#", onclick: (event) => { event.preventDefault(); list(file.path); } }, `${file.name}/`) : file.name),
            h("td", { class: "num" }, isFolder ? "" : bytes(file.size)),
            h("td", {}, file.modified_at ? new Date(file.modified_at).toLocaleString() : ""),
            h("td", {}, h("div", { class: "actions" }, actions)),
          );
        }),
      );
      if (!files.length) rows.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No files here.")));
    } catch (error) {
      toast(error.message, true);
    }
  }
  const table = h(
    "table",
    { "aria-label": "Files of the context" },
    h("thead", {}, h("tr", {}, ["Name", "Size", "Modified", ""].map((name) => h("th", { scope: "col" }, name)))),
    rows,
  );
  main.replaceChildren(heading, h("p", {}, h("a", { href: "#/contexts" }, "← All contexts")), h("div", { class: "card" }, where, table));
  call("GET", base)
    .then(({ context }) => {
      heading.querySelector("#context-name").textContent = context.name;
    })
    .catch((error) => toast(error.message, true));
  list("");
}
