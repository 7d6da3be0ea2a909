// Files in the composer (the attach button and drag-and-drop, with upload and reading progress)
// and the citation chips under a reply (a chip opens its passage, highlighted).
// Uploads go to POST /api/files; the ids of the files ready when a message is sent go with it as
// `file_ids`. Everything a file or a passage holds is shown as text, never as HTML.

import { h } from "./dom.js";
import { lang } from "./i18n.js";

const WORDS = {
  en: { attach: "Attach files", uploading: "uploading", reading: "reading", remove: "Remove", page: "page", close: "Close", drop: "Drop files to attach" },
  "zh-CN": { attach: "添加文件", uploading: "上传中", reading: "读取中", remove: "移除", page: "第", close: "关闭", drop: "松开以添加文件" },
};
const word = (key) => (WORDS[lang()] || WORDS.en)[key];
const pageLabel = (page) => (lang() === "zh-CN" ? `第 ${page} 页` : `page ${page}`);

function csrf() {
  const found = document.cookie.split("; ").find((part) => part.startsWith("mingyan_csrf="));
  return found ? decodeURIComponent(found.slice("mingyan_csrf=".length)) : null;
}

export class AttachmentTray {
  /** Adds an attach button and a tray of files to the composer `form`. */
  constructor(form, { onError }) {
    this.form = form;
    this.onError = onError;
    this.items = [];
    this.tray = h("div", { class: "attach-tray", id: "attach-tray", hidden: true });
    this.input = h("input", { type: "file", id: "attach-input", multiple: true, hidden: true });
    this.button = h("button", { type: "button", class: "icon-button attach-button", id: "attach-button", title: word("attach"), "aria-label": word("attach") }, "📎");
    form.prepend(this.button, this.input);
    form.before(this.tray);
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      [...this.input.files].forEach((file) => this.upload(file));
      this.input.value = "";
    });
    form.addEventListener("dragover", (event) => {
      event.preventDefault();
      form.classList.add("drop-target");
    });
    form.addEventListener("dragleave", () => form.classList.remove("drop-target"));
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      form.classList.remove("drop-target");
      [...(event.dataTransfer?.files || [])].forEach((file) => this.upload(file));
    });
  }

  upload(file) {
    const item = { name: file.name, id: null, state: "uploading", progress: 0 };
    item.chip = h("span", { class: "attach-chip", "data-state": "uploading" });
    this.items.push(item);
    this.render(item);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/files");
    const token = csrf();
    if (token) xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) item.progress = Math.round((100 * event.loaded) / event.total);
      this.render(item);
    });
    xhr.upload.addEventListener("load", () => {
      item.state = "reading"; // the server extracts and indexes the text before it answers
      this.render(item);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status === 200 || xhr.status === 201) {
        Object.assign(item, { id: body.id, state: "ready", pages: body.pages });
        this.render(item);
      } else {
        this.remove(item);
        this.onError(new Error(`${file.name}: ${body?.error?.message || `HTTP ${xhr.status}`}`));
      }
    });
    xhr.addEventListener("error", () => {
      this.remove(item);
      this.onError(new Error(`${file.name}: upload failed`));
    });
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  }

  render(item) {
    const status = { uploading: `${word("uploading")} ${item.progress}%`, reading: word("reading"), ready: "" }[item.state];
    const remove = h("button", { type: "button", class: "attach-remove", title: word("remove"), "aria-label": word("remove") }, "×");
    remove.addEventListener("click", () => this.remove(item));
    item.chip.dataset.state = item.state;
    item.chip.replaceChildren(h("span", { class: "attach-name", text: item.name }), h("span", { class: "attach-status", text: status }), remove);
    if (!item.chip.isConnected) this.tray.append(item.chip);
    this.tray.hidden = this.items.length === 0;
  }

  remove(item) {
    this.items = this.items.filter((other) => other !== item);
    item.chip.remove();
    this.tray.hidden = this.items.length === 0;
  }

  /** The ids of the files ready to go with the next message; the tray is emptied of them. */
  take() {
    const ready = this.items.filter((item) => item.state === "ready");
    ready.forEach((item) => this.remove(item));
    return ready.map((item) => item.id);
  }
}

/** The chips of the passages `message` cites, under its body (only when they changed). */
export function renderCitations(node, message) {
  const citations = message.citations || [];
  const key = JSON.stringify(citations.map((c) => [c.marker, c.file_id, c.page, c.start]));
  if (node._citationsKey === key) return;
  node._citationsKey = key;
  node.querySelector(".citations")?.remove();
  if (!citations.length) return;
  const row = h("div", { class: "citations" });
  for (const citation of citations) {
    const chip = h("button", { type: "button", class: "citation-chip", "data-marker": String(citation.marker) }, `[${citation.marker}] ${citation.file_name} · ${pageLabel(citation.page)}`);
    chip.addEventListener("click", () => openPassage(citation));
    row.append(chip);
  }
  node.querySelector(".msg-body").after(row);
}

function openPassage(citation) {
  document.querySelector("#passage-dialog")?.remove();
  const close = h("button", { type: "button", class: "button", text: word("close") });
  const dialog = h(
    "dialog",
    { class: "modal passage-dialog", id: "passage-dialog" },
    h("h3", { text: `[${citation.marker}] ${citation.file_name} · ${pageLabel(citation.page)}` }),
    h("p", { class: "passage-text" }, h("mark", { text: citation.text })),
    close,
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
