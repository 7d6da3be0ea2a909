// The messages of the open conversation: one node per message on the current path, keyed by id.
// Showing another path reuses the nodes it can; a streaming reply re-renders only its own body,
// at most once per animation frame (and less often when rendering gets slow).

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { createMessageNode, updateMessageNode, updateStreamingBody, toggleDetails } from "./message-view.js";
import { copiedText } from "./ai-label.js";
import { reportMessage } from "./reports-view.js";

const NEAR_BOTTOM_PX = 80;

export class ThreadView {
  /** `actions`: {copy, edit, regenerate, branch(id, step), copyCode(pre, button)} */
  constructor(root, scroller, actions) {
    this.root = root;
    this.scroller = scroller;
    this.actions = actions;
    this.nodes = new Map();
    this.tree = null;
    this.pending = new Set();
    this.frame = 0;
    this.notBefore = 0;
    this.stick = true;
    this.pinnedAt = 0;
    root.addEventListener("click", (event) => this.onClick(event));
    scroller.addEventListener("scroll", () => {
      this.stick = this.isNearBottom();
      if (this.stick) this.pinnedAt = scroller.scrollTop;
      this.onStickChange?.(this.stick);
    }, { passive: true });
    // Heights settle after the first layout (fonts, math, off-screen messages measured late): keep
    // the newest message in view while the reader has not scrolled away.
    new ResizeObserver(() => this.stick && this.stillPinned() && this.scrollToBottom()).observe(root);
  }

  isNearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.pinnedAt = this.scroller.scrollTop;
    this.stick = true;
  }

  /** Still where scrollToBottom() left it (the reader has not scrolled since, even if no scroll
   * event has arrived yet). */
  stillPinned() {
    return Math.abs(this.scroller.scrollTop - this.pinnedAt) < 2;
  }

  /** Show a conversation (or nothing, with null). */
  show(tree) {
    this.tree = tree;
    this.nodes.clear();
    this.pending.clear();
    this.root.replaceChildren();
    if (tree) this.render();
    this.scrollToBottom();
  }

  /** Make the DOM show the current path; untouched nodes stay as they are. */
  render() {
    const tree = this.tree;
    const path = tree.path();
    const keep = new Set(path);
    for (const node of [...this.root.children]) if (!keep.has(node.dataset.id)) node.remove();
    let previous = null;
    for (const id of path) {
      const message = tree.get(id);
      let node = this.nodes.get(id);
      if (!node) {
        node = createMessageNode(message);
        this.nodes.set(id, node);
      }
      updateMessageNode(node, message, tree.position(id));
      const wanted = previous ? previous.nextSibling : this.root.firstChild;
      if (wanted !== node) this.root.insertBefore(node, wanted);
      previous = node;
    }
    if (this.stick && this.stillPinned()) this.scrollToBottom();
  }

  /** A reply's text grew: re-render it on the next frame. */
  streamed(id) {
    this.pending.add(id);
    if (!this.frame) this.frame = requestAnimationFrame((now) => this.flush(now));
  }

  flush(now) {
    this.frame = 0;
    if (now < this.notBefore) {
      this.frame = requestAnimationFrame((later) => this.flush(later));
      return;
    }
    const started = performance.now();
    for (const id of this.pending) {
      const node = this.nodes.get(id);
      const message = this.tree?.get(id);
      if (node && message && node.isConnected) updateStreamingBody(node, message);
    }
    this.pending.clear();
    // A long reply costs more to parse each time: render it less often, never more than ~3% busy.
    const cost = performance.now() - started;
    this.notBefore = cost > 4 ? started + cost * 30 : 0;
    if (this.stick && this.stillPinned()) this.scrollToBottom();
  }

  /** Scroll to a message and flash it (a search hit). */
  reveal(id) {
    const node = this.nodes.get(id);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    this.stick = this.isNearBottom();
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 2000);
  }

  startEdit(id) {
    const node = this.nodes.get(id);
    const message = this.tree.get(id);
    if (!node || node.querySelector(".edit-box")) return;
    const area = h("textarea", { class: "input edit-area", rows: 3, "aria-label": t("edit") });
    area.value = message.content;
    const cancel = () => {
      box.remove();
      node._parts.body.hidden = false;
    };
    const save = () => {
      const text = area.value;
      if (!text.trim()) return;
      cancel();
      if (text !== message.content) this.actions.edit(id, text);
    };
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") cancel();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) save();
    });
    const box = h(
      "div",
      { class: "edit-box" },
      area,
      h(
        "div",
        { class: "edit-buttons" },
        h("button", { type: "button", class: "button", "data-i18n": "cancel", text: t("cancel"), onclick: cancel }),
        h("button", { type: "button", class: "button primary edit-save", "data-i18n": "saveAndSend", text: t("saveAndSend"), onclick: save }),
      ),
    );
    node._parts.body.hidden = true;
    node._parts.body.after(box);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  onClick(event) {
    const target = event.target.closest("[data-action]");
    const node = event.target.closest("article.msg");
    if (!target || !node) return;
    const id = node.dataset.id;
    const message = this.tree?.get(id);
    if (!message) return;
    switch (target.dataset.action) {
      case "copy":
        return this.actions.copy(copiedText(message), target);
      case "copy-code":
        return this.actions.copy(target.closest(".code-block").querySelector("code").textContent, target);
      case "edit":
        return this.startEdit(id);
      case "regenerate":
        return this.actions.regenerate(id);
      case "details":
        return toggleDetails(node, message);
      case "report":
        return reportMessage(message);
      case "prev":
        return this.actions.branch(id, -1);
      case "next":
        return this.actions.branch(id, +1);
      default:
        return undefined;
    }
  }
}
