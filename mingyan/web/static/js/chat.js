// The open conversation: loads it, sends messages, follows streaming replies (and re-attaches to
// replies still running after a reload), stops, regenerates, edits, switches branches. It keeps
// the ConversationTree current and tells the thread view what to redraw.

import { api, paths } from "./api.js";
import { ConversationTree } from "./tree.js";
import { applyToolEvent } from "./tools-view.js";

export class Chat extends EventTarget {
  /** `view`: a ThreadView. Events: "conversation" (opened, created, renamed, closed), "busy", "error". */
  constructor(view) {
    super();
    this.view = view;
    this.tree = null;
    this.pending = null; // the conversation being loaded, if any
    this.requests = new Set(); // streaming requests in flight: {id (once known), controller, ...}
    this.opening = 0;
    this.tools = null; // a ToolSwitch: the tool servers switched on (tools-view.js)
  }

  toolFields() {
    return this.tools ? this.tools.fields() : {};
  }

  get id() {
    return this.tree?.id ?? null;
  }

  get busy() {
    return this.requests.size > 0;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Stop following replies (they go on on the server; re-opening the chat re-attaches). */
  detach() {
    for (const state of this.requests) state.controller.abort();
    this.requests.clear();
    this.emit("busy", false);
  }

  close() {
    this.detach();
    this.opening += 1;
    this.tree = null;
    this.view.show(null);
    this.emit("conversation", null);
  }

  async open(id) {
    if (this.id === id && this.tree) return this.tree;
    this.detach();
    const ticket = ++this.opening;
    const request = api.get(paths.conversation(id));
    this.pending = request.catch(() => null); // what views that need the tree wait for
    const detail = await request;
    if (ticket !== this.opening) return null; // another conversation was opened meanwhile
    this.tree = new ConversationTree(detail);
    this.view.show(this.tree);
    this.emit("conversation", this.tree.conversation);
    for (const messageId of detail.live) this.attach(messageId);
    return this.tree;
  }

  /** Start a conversation with `options` ({system_prompt, settings}); nothing is sent yet. */
  async create(options) {
    this.detach();
    const ticket = ++this.opening;
    const conversation = await api.post(paths.conversations(), options);
    if (ticket === this.opening) {
      this.tree = new ConversationTree({ ...conversation, messages: [], current_path: [], live: [] });
      this.view.show(this.tree);
      this.emit("conversation", conversation);
    }
    return conversation;
  }

  send(content) {
    const body = { content, ...this.toolFields() };
    if (this.tree.leafId) body.parent_id = this.tree.leafId;
    const fileIds = this.attachments ? this.attachments.take() : [];
    if (fileIds.length) body.file_ids = fileIds;
    return this.follow(this.tree.id, "POST", `${paths.conversation(this.tree.id)}/messages`, body);
  }

  regenerate(messageId) {
    return this.follow(this.tree.id, "POST", paths.message(this.tree.id, messageId, "regenerate"), this.toolFields());
  }

  edit(messageId, content) {
    return this.follow(this.tree.id, "POST", paths.message(this.tree.id, messageId, "edit"), { content, ...this.toolFields() });
  }

  /** Follow a reply already running (after a reload, or a lost connection). */
  attach(messageId) {
    return this.follow(this.tree.id, "GET", paths.message(this.tree.id, messageId, "events"), undefined, messageId);
  }

  async stop() {
    const tree = this.tree;
    const ids = [...this.requests].map((state) => state.id).filter(Boolean);
    await Promise.all(ids.map(async (id) => {
      const message = await api.post(paths.message(tree.id, id, "stop"));
      if (this.tree === tree) this.finish(id, message);
    }));
  }

  /** Show the version `step` (-1, +1) away from message `id`. */
  async branch(id, step) {
    const tree = this.tree;
    const siblings = tree.siblings(id);
    const target = siblings[siblings.indexOf(id) + step];
    if (!target) return;
    await this.switchTo(target);
  }

  /** Make the branch holding message `id` current (its latest leaf). */
  async switchTo(id) {
    const tree = this.tree;
    const conversation = await api.post(`${paths.conversation(tree.id)}/branch`, { message_id: id });
    if (this.tree !== tree) return;
    Object.assign(tree.conversation, conversation);
    tree.leafId = conversation.current_leaf_id;
    this.view.render();
  }

  /**
   * Run a streaming request and apply its events in the background. Resolves true once the reply
   * has started, false when the server refused the request (the error is emitted).
   */
  follow(conversationId, method, url, body, messageId = null) {
    const state = { id: messageId, done: false, controller: new AbortController(), started: null };
    const started = new Promise((resolve) => (state.started = resolve));
    this.requests.add(state);
    this.emit("busy", true);
    this.run(conversationId, method, url, body, state).finally(() => {
      this.requests.delete(state);
      this.emit("busy", this.busy);
      state.started(state.id != null);
    });
    return started;
  }

  async run(conversationId, method, url, body, state) {
    const { controller } = state;
    try {
      for await (const event of api.stream(method, url, body, { signal: controller.signal })) {
        if (this.tree?.id !== conversationId) break;
        this.apply(event, state);
      }
    } catch (error) {
      if (error.name !== "AbortError") this.emit("error", error);
      return;
    }
    if (!state.done && !controller.signal.aborted && state.id && this.tree?.id === conversationId) {
      // The connection ended before the reply did: attach again, the server kept generating.
      const id = state.id;
      setTimeout(() => this.tree?.id === conversationId && !this.following(id) && this.attach(id), 1000);
    }
  }

  following(id) {
    return [...this.requests].some((state) => state.id === id);
  }

  apply(event, state) {
    if (applyToolEvent(this, event, state)) return;
    const tree = this.tree;
    if (event.type === "start") {
      if (event.user_message) tree.put(event.user_message);
      const message = tree.put({ ...event.message, omitted_turns: event.message.omitted_turns ?? event.omitted_turns });
      state.id = message.id;
      tree.leafId = message.id;
      this.view.render();
      state.started(true);
    } else if (event.type === "snapshot" || event.type === "delta") {
      const message = tree.get(state.id);
      if (!message) return;
      message.content = event.type === "snapshot" ? event.text : message.content + event.text;
      message.status = "streaming";
      this.view.streamed(message.id);
    } else if (event.type === "done") {
      state.done = true;
      if (event.message) this.finish(event.message.id, event.message);
    }
  }

  finish(id, message) {
    this.tree.put(message);
    this.view.render();
    this.emit("finished", message);
  }
}
