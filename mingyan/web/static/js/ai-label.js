// AI-generated labels in the page: the implicit label of a reply as data attributes on its node
// (provider, content id), and — when the operator turns it on — the explicit notice appended to
// text copied from a reply. The options come from /api/labels once signed in.

import { api } from "./api.js";

export const labelOptions = { onCopy: false, provider: "" };

export async function loadLabelOptions() {
  try {
    const options = await api.get("/api/labels", { quiet: true });
    labelOptions.onCopy = Boolean(options.on_copy);
    labelOptions.provider = options.provider || "";
  } catch {
    // not signed in yet, or no history API: nothing is added to copied text
  }
}

/** Put a reply's implicit label on its node (data-ai-provider, data-content-id). */
export function applyAiLabel(node, message) {
  const label = message.ai_label;
  if (!label) return;
  node.dataset.aiProvider = label.provider || "";
  node.dataset.contentId = label.content_id || "";
}

/** The text to copy from `message`: a reply gets the explicit notice when the operator asks for it. */
export function copiedText(message) {
  if (message.role !== "assistant" || !labelOptions.onCopy) return message.content;
  const provider = message.ai_label?.provider || labelOptions.provider;
  return `${message.content}\n\n— AI-generated content · 以上内容由人工智能生成${provider ? ` · ${provider}` : ""}`;
}
