// The message box. Enter sends, Shift+Enter is a new line, and Enter that confirms an IME
// composition (Chinese pinyin, Japanese kana...) never sends: the keydown is ignored when
// event.isComposing is set, its keyCode is 229 (Safari sends compositionend first), or a
// composition is open (compositionstart/compositionend tracking).

import { t } from "./i18n.js";

const MAX_ROWS_PX = 240;

export class Composer {
  /** `onSend(text)` resolves true when the message was accepted; `onStop()` stops the reply. */
  constructor(form, { onSend, onStop }) {
    this.form = form;
    this.input = form.querySelector("textarea");
    this.button = form.querySelector("button[type=submit]");
    this.onSend = onSend;
    this.onStop = onStop;
    this.composing = false;
    this.busy = false;
    this.pending = ""; // the text being sent, until the server took it
    this.input.addEventListener("compositionstart", () => (this.composing = true));
    this.input.addEventListener("compositionend", () => (this.composing = false));
    this.input.addEventListener("keydown", (event) => this.onKeydown(event));
    this.input.addEventListener("input", () => this.resize());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.busy) this.onStop();
      else this.submit();
    });
  }

  onKeydown(event) {
    if (event.key !== "Enter" || event.shiftKey || event.altKey) return;
    if (event.isComposing || event.keyCode === 229 || this.composing) return;
    event.preventDefault();
    if (!this.busy) this.submit();
  }

  async submit() {
    const text = this.input.value;
    if (!text.trim() || this.busy) return;
    this.input.value = "";
    this.resize();
    this.pending = text;
    const accepted = await this.onSend(text).finally(() => (this.pending = ""));
    if (!accepted && !this.input.value) {
      this.input.value = text; // refused (e.g. too long): give the text back
      this.resize();
    }
  }

  setBusy(busy) {
    this.busy = busy;
    this.form.dataset.busy = busy ? "true" : "false";
    const key = busy ? "stop" : "send";
    this.button.dataset.i18n = key;
    this.button.textContent = t(key);
  }

  resize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, MAX_ROWS_PX)}px`;
  }

  focus() {
    this.input.focus();
  }

  /** What the user has typed and not yet sent (the text in the box, or the one being sent). */
  text() {
    return this.input.value || this.pending;
  }

  setText(text) {
    this.input.value = text;
    this.resize();
  }
}
