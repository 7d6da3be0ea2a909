// The sidebar: conversations (pinned first), search across them, and per-conversation actions
// (rename, pin, archive, export, delete); at the bottom, archived chats, import and export.

import { api, paths } from "./api.js";
import { h, debounce } from "./dom.js";
import { t, tr } from "./i18n.js";
import { confirmDialog, promptDialog, toast } from "./dialogs.js";
import { icon } from "./icons.js";

const PAGE = 100;

export class Sidebar {
  /** `app`: {open(id, messageId?), current() -> id | null, changed(conversation), closed(id)} */
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.list = root.querySelector("#conversation-list");
    this.results = root.querySelector("#search-results");
    this.search = root.querySelector("#search");
    this.archivedButton = root.querySelector("#show-archived");
    this.conversations = [];
    this.showArchived = false;
    this.hasMore = false;
    this.menu = null;
    this.search.addEventListener("input", debounce(() => this.runSearch(), 250));
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.search.value = "";
        this.runSearch();
      }
    });
    this.archivedButton.addEventListener("click", () => this.toggleArchived());
    this.list.addEventListener("click", (event) => this.onListClick(event));
    this.results.addEventListener("click", (event) => this.onResultClick(event));
    document.addEventListener("click", (event) => {
      if (this.menu && !this.menu.contains(event.target)) this.closeMenu();
    });
    document.addEventListener("keydown", (event) => event.key === "Escape" && this.closeMenu());
  }

  async refresh() {
    try {
      const page = await api.get(paths.conversations(`?archived=${this.showArchived}&limit=${PAGE}`));
      this.conversations = page.data;
      this.hasMore = page.has_more;
      this.renderList();
    } catch (error) {
      if (error.status !== 401) toast(error.message, "error"); // 401: the page goes to sign-in
    }
  }

  async loadMore() {
    const offset = this.conversations.length;
    const page = await api.get(paths.conversations(`?archived=${this.showArchived}&limit=${PAGE}&offset=${offset}`));
    this.conversations.push(...page.data);
    this.hasMore = page.has_more;
    this.renderList();
  }

  /** Forget the list (signed out: nothing of the previous user stays on the page). */
  clear() {
    this.conversations = [];
    this.hasMore = false;
    this.search.value = "";
    this.results.replaceChildren();
    this.results.hidden = true;
    this.list.hidden = false;
    this.renderList();
  }

  find(id) {
    return this.conversations.find((c) => c.id === id) || null;
  }

  /** A conversation changed elsewhere (title, settings): show it without a round trip. */
  updated(conversation) {
    const held = this.find(conversation.id);
    if (held) Object.assign(held, conversation);
    this.renderList();
  }

  toggleArchived() {
    this.showArchived = !this.showArchived;
    this.archivedButton.setAttribute("aria-pressed", String(this.showArchived));
    this.archivedButton.dataset.i18n = this.showArchived ? "showActive" : "showArchived";
    this.archivedButton.textContent = t(this.archivedButton.dataset.i18n);
    this.refresh();
  }

  renderList() {
    const current = this.app.current();
    const shown = this.showArchived ? this.conversations.filter((c) => c.archived) : this.conversations;
    const items = shown.map((c) =>
      h(
        "div",
        { class: `conv-item${c.id === current ? " active" : ""}${c.pinned ? " pinned" : ""}`, "data-id": c.id },
        h("a", { href: `/c/${encodeURIComponent(c.id)}`, class: "conv-link", "data-link": "open" },
          c.pinned ? h("span", { class: "pin-mark" }, icon("pin")) : null,
          h("span", { class: "conv-title", ...(c.title ? { text: c.title } : tr("untitled")) })),
        h("button", { type: "button", class: "icon-button conv-menu-button", "data-action": "menu", "data-i18n-title": "more", title: t("more"), "aria-label": t("more") }, icon("more")),
      ),
    );
    if (!items.length) items.push(h("p", { class: "empty", ...tr(this.showArchived ? "noArchived" : "noConversations") }));
    if (this.hasMore) items.push(h("button", { type: "button", class: "button link", "data-action": "more-conversations", ...tr("loadMore") }));
    this.list.replaceChildren(...items);
  }

  markActive(id) {
    for (const item of this.list.querySelectorAll(".conv-item")) item.classList.toggle("active", item.dataset.id === id);
  }

  onListClick(event) {
    const action = event.target.closest("[data-action], [data-link]");
    if (!action) return;
    if (action.dataset.action === "more-conversations") return void this.loadMore();
    const id = event.target.closest(".conv-item")?.dataset.id;
    if (!id) return;
    event.preventDefault();
    if (action.dataset.action === "menu") {
      event.stopPropagation();
      this.openMenu(id, action);
    } else {
      this.app.open(id);
    }
  }

  openMenu(id, anchor) {
    this.closeMenu();
    const c = this.find(id);
    const entry = (key, handler, danger = false) =>
      h("button", { type: "button", role: "menuitem", class: `menu-item${danger ? " danger" : ""}`, "data-menu": key, text: t(key), onclick: () => (this.closeMenu(), handler()) });
    this.menu = h(
      "div",
      { class: "menu", role: "menu" },
      entry("rename", () => this.rename(c)),
      entry(c.pinned ? "unpin" : "pin", () => this.patch(c, { pinned: !c.pinned })),
      entry(c.archived ? "unarchive" : "archive", () => this.patch(c, { archived: !c.archived })),
      entry("exportJson", () => this.download(`${paths.conversation(id)}/export?format=json`, `${id}.json`)),
      entry("exportMarkdown", () => this.download(`${paths.conversation(id)}/export?format=markdown`, `${id}.md`)),
      entry("delete", () => this.remove(c), true),
    );
    anchor.closest(".conv-item").append(this.menu);
    this.menu.querySelector("button").focus();
  }

  closeMenu() {
    this.menu?.remove();
    this.menu = null;
  }

  async rename(c) {
    const title = await promptDialog({ title: t("renameTitle"), value: c.title });
    if (title == null || title === c.title) return;
    await this.patch(c, { title });
  }

  async patch(c, changes) {
    try {
      const conversation = await api.patch(paths.conversation(c.id), changes);
      Object.assign(c, conversation);
      this.app.changed(conversation);
      await this.refresh();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async remove(c) {
    const ok = await confirmDialog({ title: t("deleteTitle"), message: t("deleteConfirm", { title: c.title || t("untitled") }), confirm: t("delete"), danger: true });
    if (!ok) return;
    try {
      await api.delete(paths.conversation(c.id));
      this.app.closed(c.id);
      await this.refresh();
      toast(t("deleted"));
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async download(path, name) {
    try {
      await api.download(path, name);
    } catch (error) {
      toast(error.message, "error");
    }
  }

  async runSearch() {
    const q = this.search.value.trim();
    const searching = q.length > 0;
    this.results.hidden = !searching;
    this.list.hidden = searching;
    if (!searching) return this.results.replaceChildren();
    try {
      const found = await api.get(`/api/search?q=${encodeURIComponent(q)}&limit=30`);
      if (this.search.value.trim() !== q) return undefined; // typed on meanwhile
      this.renderResults(found.data);
    } catch (error) {
      this.results.replaceChildren(h("p", { class: "empty error-text", text: error.message }));
    }
    return undefined;
  }

  renderResults(hits) {
    if (!hits.length) return this.results.replaceChildren(h("p", { class: "empty", ...tr("noResults") }));
    return this.results.replaceChildren(
      ...hits.map((hit) =>
        h(
          "button",
          { type: "button", class: "search-hit", "data-conversation": hit.conversation_id, "data-message": hit.message_id || "" },
          h("span", { class: "hit-title", ...(hit.conversation_title ? { text: hit.conversation_title } : tr("untitled")) }),
          h("span", { class: "hit-snippet" },
            h("span", { class: "hit-where", ...tr(hit.message_id ? (hit.role === "user" ? "hitUser" : "hitAssistant") : "hitTitle") }),
            hit.archived ? h("span", { class: "hit-where", ...tr("hitArchived") }) : null,
            highlight(hit.snippet, hit.match)),
        ),
      ),
    );
  }

  onResultClick(event) {
    const hit = event.target.closest(".search-hit");
    if (hit) this.app.open(hit.dataset.conversation, hit.dataset.message || null);
  }
}

/** The snippet as text nodes with <mark> around the matched ranges (offsets in code points). */
function highlight(snippet, ranges) {
  const chars = Array.from(snippet);
  const parts = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at) continue;
    parts.push(chars.slice(at, start).join(""), h("mark", { text: chars.slice(start, end).join("") }));
    at = end;
  }
  parts.push(chars.slice(at).join(""));
  return parts.filter((part) => part !== "");
}
