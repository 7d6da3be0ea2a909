// One message as a DOM node. A node is built once and then updated part by part (body, status,
// branch navigation, details), each only when what it shows changed: rendering a conversation
// again after a new reply leaves every old message's DOM untouched.

import { h } from "./dom.js";
import { t, tr } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";
import { icon } from "./icons.js";
import { updateToolView } from "./tools-view.js";
import { renderCitations } from "./attachments.js";
import { applyAiLabel } from "./ai-label.js";

function button(action, key, iconName) {
  return h("button", { type: "button", class: `icon-button act-${action}`, "data-action": action, "data-i18n-title": key, title: t(key), "aria-label": t(key) }, icon(iconName));
}

export function createMessageNode(message) {
  const { role } = message;
  const node = h("article", { class: `msg msg-${role}`, "data-id": message.id, "data-role": role });
  const parts = { body: h("div", { class: "msg-body" }) };
  if (role === "assistant") {
    node.dataset.aiGenerated = "true"; // machine-readable label of generated content
    parts.model = h("span", { class: "msg-model" });
    node.append(h("div", { class: "msg-head" }, h("span", { class: "ai-label", ...tr("aiGenerated") }), parts.model));
  } else if (role === "system") {
    node.append(h("div", { class: "msg-head" }, h("span", { class: "role-label", ...tr("systemMessage") })));
  }
  parts.notice = h("div", { class: "msg-notice", hidden: true });
  parts.status = h("div", { class: "msg-status", hidden: true });
  parts.nav = h("span", { class: "branch-nav", hidden: true });
  const actions = h("div", { class: "msg-actions" }, parts.nav, button("copy", "copy", "copy"));
  if (role === "user") actions.append(button("edit", "edit", "edit"));
  if (role === "assistant") actions.append(button("regenerate", "regenerate", "regenerate"), button("details", "details", "info"), button("report", "report", "flag"));
  parts.details = h("div", { class: "msg-details", hidden: true });
  node.append(parts.body, parts.notice, parts.status, actions, parts.details);
  node._parts = parts;
  node._shown = {};
  return node;
}

/** Bring `node` up to date with `message`; `index`/`count`: its place among its versions. */
export function updateMessageNode(node, message, { index, count }) {
  const { _parts: parts, _shown: shown } = node;
  if (shown.content !== message.content || shown.status !== message.status) {
    renderBody(parts.body, message);
    shown.content = message.content;
  }
  const metaKey = [message.status, message.error, message.omitted_turns, message.model_name, message.updated_at, message.ai_label?.content_id].join("|");
  if (shown.meta !== metaKey) {
    renderMeta(node, message);
    if (!parts.details.hidden) renderDetails(parts.details, message);
    shown.meta = metaKey;
  }
  shown.status = message.status;
  renderCitations(node, message);
  const navKey = `${index}/${count}`;
  if (shown.nav !== navKey) {
    renderNav(parts.nav, index, count);
    shown.nav = navKey;
  }
  updateToolView(node, message);
}

/** Re-render only the body of a streaming reply. */
export function updateStreamingBody(node, message) {
  renderBody(node._parts.body, message);
  node._shown.content = message.content;
}

function renderBody(body, message) {
  if (message.role !== "assistant") {
    body.textContent = message.content; // user text is shown, never interpreted
  } else if (!message.content && message.status === "streaming") {
    body.replaceChildren(h("span", { class: "typing", "aria-label": t("generating") }, h("i"), h("i"), h("i")));
  } else {
    body.replaceChildren(renderMarkdown(message.content));
  }
}

function renderMeta(node, message) {
  const { notice, status, model } = node._parts;
  node.classList.toggle("streaming", message.status === "streaming");
  if (model) model.textContent = message.model_name || "";
  applyAiLabel(node, message);
  const omitted = message.omitted_turns || 0;
  notice.hidden = omitted <= 0;
  notice.replaceChildren(...(omitted > 0 ? [h("span", { "aria-hidden": "true" }, "⚠ "), h("span", tr("omittedTurns", { n: omitted }))] : []));
  const badge = message.moderation === "admin_stop" ? "statusAdminStop" : {
    streaming: "statusStreaming",
    stopped: "statusStopped",
    error: "statusError",
    interrupted: "statusInterrupted",
    refused: "statusRefused",
  }[message.status];
  status.hidden = !badge || message.role !== "assistant";
  status.replaceChildren();
  if (badge && message.role === "assistant") {
    status.append(h("span", { class: `badge badge-${message.status}`, ...tr(badge) }));
    if (message.status === "error" && message.error) status.append(h("span", { class: "error-text", text: message.error }));
  }
}

function renderNav(nav, index, count) {
  nav.hidden = count < 2;
  if (count < 2) return nav.replaceChildren();
  const prev = h("button", { type: "button", class: "icon-button", "data-action": "prev", "data-i18n-title": "previousVersion", title: t("previousVersion"), "aria-label": t("previousVersion"), disabled: index <= 1 }, "‹");
  const next = h("button", { type: "button", class: "icon-button", "data-action": "next", "data-i18n-title": "nextVersion", title: t("nextVersion"), "aria-label": t("nextVersion"), disabled: index >= count }, "›");
  nav.replaceChildren(prev, h("span", { class: "branch-count", text: `${index} / ${count}` }), next);
}

const fmt = (value, digits = 0) => (value == null ? "—" : Number(value).toFixed(digits));

export function tokensPerSecond(message) {
  if (!message.completion_tokens || !message.duration_ms) return null;
  return message.completion_tokens / (message.duration_ms / 1000);
}

export function renderDetails(box, message) {
  const rows = [
    ["detailModel", message.model_name || "—"],
    ["detailPromptTokens", fmt(message.prompt_tokens)],
    ["detailCachedTokens", fmt(message.cached_tokens)],
    ["detailCompletionTokens", fmt(message.completion_tokens)],
    ["detailSpeed", tokensPerSecond(message) == null ? "—" : `${fmt(tokensPerSecond(message), 1)} tok/s`],
    ["detailTtft", message.ttft_ms == null ? "—" : `${message.ttft_ms} ms`],
    ["detailDuration", message.duration_ms == null ? "—" : `${fmt(message.duration_ms / 1000, 2)} s`],
    ["detailFinish", message.finish_reason || "—"],
    ["detailStatus", message.status],
    ["detailSeed", message.seed ?? "—"],
    ["detailSampling", message.sampling && Object.keys(message.sampling).length ? JSON.stringify(message.sampling) : "—"],
    ["detailCreated", new Date(message.created_at).toLocaleString()],
  ];
  box.replaceChildren(h("dl", {}, rows.map(([key, value]) => [h("dt", tr(key)), h("dd", { "data-detail": key, text: String(value) })])));
}

export function toggleDetails(node, message) {
  const box = node._parts.details;
  box.hidden = !box.hidden;
  if (!box.hidden) renderDetails(box, message);
}
