// One conversation as the client holds it: every message of the tree (parent links), and the
// current leaf. The path from the root to the leaf is what the page shows and the model sees.

const ROOT = "";

export class ConversationTree {
  constructor(detail) {
    this.messages = new Map();
    this.children = new Map(); // parent id ("" for roots) -> child ids, oldest first
    const { messages = [], current_path: path = [], live = [], ...conversation } = detail;
    this.conversation = conversation;
    this.live = live;
    for (const message of messages) this.put(message);
    this.leafId = conversation.current_leaf_id ?? path[path.length - 1] ?? null;
  }

  get id() {
    return this.conversation.id;
  }

  get(id) {
    return this.messages.get(id);
  }

  /** Add a message, or merge newer fields into the one held. */
  put(message) {
    const held = this.messages.get(message.id);
    if (held) {
      Object.assign(held, message);
      return held;
    }
    const copy = { ...message };
    this.messages.set(copy.id, copy);
    const parent = copy.parent_id ?? ROOT;
    if (!this.children.has(parent)) this.children.set(parent, []);
    this.children.get(parent).push(copy.id);
    return copy;
  }

  /** Ids from the root to the current leaf. */
  path() {
    const ids = [];
    const seen = new Set();
    for (let id = this.leafId; id && !seen.has(id); id = this.messages.get(id)?.parent_id) {
      seen.add(id);
      ids.push(id);
    }
    return ids.reverse();
  }

  /** The versions of a message: its parent's children (oldest first). */
  siblings(id) {
    const message = this.messages.get(id);
    return (message && this.children.get(message.parent_id ?? ROOT)) || [id];
  }

  /** Position among siblings, 1-based, and how many there are. */
  position(id) {
    const siblings = this.siblings(id);
    return { index: siblings.indexOf(id) + 1, count: siblings.length };
  }
}
