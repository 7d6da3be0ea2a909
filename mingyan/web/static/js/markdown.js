// Model text -> safe DOM. Order matters (a sanitizer run before markdown is undone by it):
//   1. marked (GFM) turns markdown into HTML; raw HTML in the text is escaped, never passed on;
//      images become links (no remote fetch); code is highlighted; math goes through KaTeX;
//   2. DOMPurify sanitizes the whole HTML string into a DocumentFragment;
//   3. links are checked again on the DOM (only http, https, mailto) and open in a new tab with
//      rel="noopener noreferrer"; code blocks get a header with a copy button.
// The CSP (no inline script) is the last line of defense.

import { Marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import hljs from "../vendor/highlight/highlight.min.js";
import { mathExtension } from "./math.js";
import { h } from "./dom.js";
import { icon } from "./icons.js";
import { t } from "./i18n.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The absolute URL if it is safe to link to, else null (javascript:, data:, vbscript:, ...). */
export function safeUrl(raw) {
  if (raw == null || raw === "") return null;
  try {
    const url = new URL(raw, location.href);
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function languageOf(lang) {
  const name = (lang || "").trim().split(/\s+/)[0].toLowerCase();
  return name && hljs.getLanguage(name) ? name : "";
}

const marked = new Marked({ gfm: true, breaks: false, async: false });
marked.use(mathExtension(), {
  renderer: {
    // Raw HTML is shown as text, never interpreted.
    html: ({ text, block }) => (block ? `<p class="raw-html">${escapeHtml(text.trim())}</p>\n` : escapeHtml(text)),
    image: ({ href, text }) => `<a class="remote-image" href="${escapeHtml(href || "")}">${escapeHtml(text || "")}</a>`,
    code({ text, lang }) {
      const language = languageOf(lang);
      const body = language ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      const label = escapeHtml((lang || "").trim().split(/\s+/)[0] || "");
      return `<pre data-lang="${label}"><code class="hljs${language ? ` language-${language}` : ""}">${body}</code></pre>\n`;
    },
  },
});

const PURIFY = {
  USE_PROFILES: { html: true, svg: true, mathMl: true },
  FORBID_TAGS: ["style", "img", "form", "button", "textarea", "select", "iframe", "object", "embed", "video", "audio", "source", "picture", "link", "meta", "base"],
  FORBID_ATTR: ["srcset", "action", "formaction", "ping", "background", "poster", "xlink:href"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("uponSanitizeAttribute", (_node, data) => {
  // KaTeX writes style attributes; none of them may fetch anything.
  if (data.attrName === "style" && /url\s*\(|expression\s*\(|@import|image-set/i.test(data.attrValue)) data.keepAttr = false;
});

function fixLinks(root) {
  for (const link of root.querySelectorAll("a")) {
    const url = safeUrl(link.getAttribute("href"));
    const image = link.classList.contains("remote-image");
    if (image) {
      link.prepend(icon("image"), " ");
      link.title = url ? t("remoteImageTitle", { url }) : t("blockedLink");
      if (!link.textContent.trim()) link.append(t("image"));
    }
    if (url) {
      link.setAttribute("href", url);
      link.setAttribute("target", "_blank");
      link.setAttribute("rel", "noopener noreferrer");
    } else {
      link.removeAttribute("href");
      link.classList.add("blocked-link");
      if (!image) link.title = t("blockedLink");
    }
  }
}

function decorateCode(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const lang = pre.dataset.lang || "";
    const head = h(
      "div",
      { class: "code-head" },
      h("span", { class: "code-lang", text: lang }),
      h("button", { type: "button", class: "code-copy", "data-action": "copy-code", "data-i18n": "copyCode", text: t("copyCode") }),
    );
    const block = h("div", { class: "code-block" });
    pre.replaceWith(block);
    block.append(head, pre);
  }
}

/** Render markdown `text` as a sanitized DocumentFragment. */
export function renderMarkdown(text) {
  let html;
  try {
    html = marked.parse(text);
  } catch {
    html = `<p>${escapeHtml(text)}</p>`;
  }
  const fragment = DOMPurify.sanitize(html, PURIFY);
  fixLinks(fragment);
  decorateCode(fragment);
  return fragment;
}
