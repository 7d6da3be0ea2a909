// Tools in the chat (MCP servers): the composer's switch (stored per conversation), the tool loop's
// events applied to the conversation tree, and each call and result shown collapsed, with its
// arguments and result as JSON or text and approve / deny buttons for a call that waits.
// Everything a tool or the model wrote is shown as text (textContent), never as HTML.

import { api, paths } from "./api.js";
import { h } from "./dom.js";
import { lang } from "./i18n.js";

const TEXT = {
  en: {
    tools: "Tools",
    toolsHint: "Tools the model may use in this conversation",
    call: "Tool call",
    result: "Tool result",
    waiting: "Waiting for your approval",
    approve: "Approve",
    deny: "Deny",
    approved: "approved",
    denied: "denied",
    timeout: "not approved in time",
    running: "running…",
    error: "error",
    notice: "Notice",
    notSaved: "The tools choice was not saved",
  },
  zh: {
    tools: "工具",
    toolsHint: "本对话中模型可以使用的工具",
    call: "工具调用",
    result: "工具结果",
    waiting: "等待你的批准",
    approve: "批准",
    deny: "拒绝",
    approved: "已批准",
    denied: "已拒绝",
    timeout: "未及时批准",
    running: "运行中…",
    error: "错误",
    notice: "提示",
    notSaved: "工具选择未能保存",
  },
};

const say = (key) => (lang().startsWith("zh") ? TEXT.zh : TEXT.en)[key];
const sameSet = (a, b) => a.length === b.length && a.every((name) => b.includes(name));

/**
 * The composer's tool switch: one checkbox per enabled server. The choice is the conversation's
 * (`settings.tools`, stored on the server: it stays after a reload and on other devices); a new
 * chat starts with the choice made before it was created.
 */
export class ToolSwitch {
  /** `conversation`: () => the open conversation (its stored fields), or null; `onError(error)`. */
  constructor(root, conversation, onError = () => {}) {
    this.root = root;
    this.conversation = conversation;
    this.onError = onError;
    this.servers = [];
    this.chosen = new Set();
    this.draft = new Set(); // the next new chat's choice
  }

  async load() {
    try {
      this.servers = (await api.get("/api/tools")).data;
    } catch {
      this.servers = [];
    }
    this.show();
  }

  stored() {
    return this.conversation()?.settings?.tools ?? [];
  }

  /** The open conversation changed (or was loaded): show its stored choice. */
  show() {
    this.chosen = new Set(this.conversation() ? this.stored() : this.draft);
    this.root.hidden = this.servers.length === 0;
    const boxes = this.servers.map((name) => {
      const box = h("input", { type: "checkbox", value: name, checked: this.chosen.has(name) });
      box.addEventListener("change", () => this.toggle(name, box));
      return h("label", { class: "tool-choice" }, box, h("span", { text: name }));
    });
    this.root.replaceChildren(h("span", { class: "tool-switch-label", title: say("toolsHint"), text: `🛠 ${say("tools")}` }), ...boxes);
  }

  /** A switch flipped: stored at once in the open conversation's settings (the draft's otherwise). */
  async toggle(name, box) {
    if (box.checked) this.chosen.add(name);
    else this.chosen.delete(name);
    const conversation = this.conversation();
    if (!conversation) {
      this.draft = new Set(this.chosen);
      return;
    }
    const tools = [...this.chosen].sort();
    try {
      const saved = await api.patch(paths.conversation(conversation.id), { settings: { ...conversation.settings, tools } });
      if (this.conversation()?.id === saved.id) Object.assign(this.conversation(), saved);
    } catch (error) {
      if (this.conversation()?.id === conversation.id) {
        this.chosen = new Set(this.stored());
        box.checked = this.chosen.has(name);
      }
      this.onError(new Error(`${say("notSaved")}: ${error.message}`));
    }
  }

  /** A new chat's settings: `settings` with the choice made before it was created. */
  withChoice(settings) {
    const tools = [...this.draft].filter((name) => this.servers.includes(name));
    return tools.length ? { ...settings, tools } : settings;
  }

  /** The request field: absent when the stored choice applies, else the servers switched on. */
  fields() {
    const tools = [...this.chosen].filter((name) => this.servers.includes(name));
    const conversation = this.conversation();
    const stored = this.stored().filter((name) => this.servers.includes(name));
    if (conversation && sameSet(tools, stored)) return {};
    if (conversation) conversation.settings = { ...conversation.settings, tools };
    return { tools };
  }
}

/** Apply a tool loop's event to the chat's tree; true when it was one. */
export function applyToolEvent(chat, event, state) {
  const tree = chat.tree;
  if (event.type === "snapshot" && event.message) {
    const streaming = event.message.status === "streaming";
    tree.put(streaming ? { ...event.message, content: event.text } : event.message);
    state.id = event.message.id;
    chat.view.render();
    return true;
  }
  if (event.type === "notice") {
    chat.emit("error", new Error(`${say("notice")}: ${event.text}`));
    return true;
  }
  if (!["tool_call", "tool_running", "tool_pending", "tool_result", "step"].includes(event.type)) return false;
  const message = tree.put(event.message);
  if (event.type !== "tool_call") tree.leafId = message.id;
  if (event.type === "step") state.id = message.id;
  chat.view.render();
  return true;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function block(text, kind) {
  return h("pre", { class: `tool-json tool-json-${kind}` }, h("code", { text: pretty(text) }));
}

/** Add or refresh the collapsed call/result view of a message of a tool loop. */
export function updateToolView(node, message) {
  const calls = message.tool?.calls;
  if (message.role !== "tool" && !calls) return;
  const key = [message.status, message.content, message.tool?.approval, message.tool?.error].join("|");
  if (node._toolKey === key) return;
  node._toolKey = key;
  node._parts.tool?.remove();
  const view = message.role === "tool" ? resultView(message) : h("div", { class: "tool-calls" }, calls.map(callView));
  node._parts.tool = view;
  if (message.role === "tool") node._parts.body.hidden = true;
  node._parts.body.after(view);
}

function callView(call) {
  return h(
    "details",
    { class: "tool-call" },
    h("summary", { text: `${say("call")}: ${call.name} · ${call.server}` }),
    block(call.arguments, "arguments"),
  );
}

function resultView(message) {
  const info = message.tool || {};
  const bits = [`${say("result")}: ${info.tool} · ${info.server}`];
  if (info.duration_ms != null) bits.push(`${info.duration_ms} ms`);
  if (info.result_size != null) bits.push(`${info.result_size} chars`);
  if (info.approval && info.approval !== "pending") bits.push(say(info.approval));
  if (info.error) bits.push(`${say("error")}: ${info.error}`);
  const pending = info.approval === "pending" && message.status === "streaming";
  const running = !pending && message.status === "streaming";
  const details = h(
    "details",
    { class: `tool-result${info.error ? " tool-error" : ""}`, open: pending },
    h("summary", { text: running ? `${bits[0]} · ${say("running")}` : bits.join(" · ") }),
    block(info.arguments || "{}", "arguments"),
    running || pending ? null : block(message.content, "result"),
  );
  if (pending) details.append(approvalButtons(message));
  return details;
}

function approvalButtons(message) {
  const decide = (approve) => async () => {
    row.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      await api.post(paths.message(message.conversation_id, message.id, "approval"), { approve });
    } catch {
      row.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  };
  const row = h(
    "div",
    { class: "tool-approval" },
    h("span", { text: say("waiting") }),
    h("button", { type: "button", class: "button primary tool-approve", text: say("approve"), onclick: decide(true) }),
    h("button", { type: "button", class: "button tool-deny", text: say("deny"), onclick: decide(false) }),
  );
  return row;
}
