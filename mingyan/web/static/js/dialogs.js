// Modal dialogs (confirm, prompt) and toasts, built from <dialog>. The browser's own alert/
// confirm/prompt are never used: they block the page and cannot be styled or translated.

import { h } from "./dom.js";
import { t } from "./i18n.js";

function modal(title, body, buttons) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "modal small" });
    const form = h("form", { method: "dialog" }, h("h2", { text: title }), body, h("div", { class: "modal-buttons" }, buttons));
    dialog.append(form);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Ask a yes/no question; resolves true when confirmed. */
export async function confirmDialog({ title, message, confirm, danger = false }) {
  const answer = await modal(title, h("p", { text: message }), [
    h("button", { value: "cancel", class: "button", text: t("cancel") }),
    h("button", { value: "ok", class: danger ? "button danger" : "button primary", text: confirm || t("ok") }),
  ]);
  return answer === "ok";
}

/**
 * A dialog around `body` (fields); resolves true when confirmed. Enter in a field confirms;
 * `check()` (optional) keeps the confirm button disabled until it returns true.
 */
export async function formDialog({ title, body, confirm, danger = false, check = null }) {
  const ok = h("button", { value: "ok", class: danger ? "button primary danger" : "button primary", text: confirm || t("ok") });
  const cancel = h("button", { value: "cancel", class: "button", text: t("cancel"), formnovalidate: true });
  const update = () => check && (ok.disabled = !check());
  body.addEventListener("input", update);
  body.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.target.tagName !== "INPUT" || event.isComposing) return;
    event.preventDefault();
    if (!ok.disabled) ok.click();
  });
  update();
  return (await modal(title, body, [cancel, ok])) === "ok";
}

/** Ask for a line of text; resolves the text, or null when cancelled. */
export async function promptDialog({ title, value = "", maxLength = 200 }) {
  const input = h("input", { type: "text", class: "input", maxlength: maxLength, "aria-label": title });
  input.value = value;
  const answer = await modal(title, input, [
    h("button", { value: "cancel", class: "button", text: t("cancel") }),
    h("button", { value: "ok", class: "button primary", text: t("save") }),
  ]);
  return answer === "ok" ? input.value : null;
}

/** A short message at the bottom of the page. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
