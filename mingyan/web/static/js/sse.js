// Server-sent events parser (the text/event-stream format) for streams read with fetch():
// EventSource cannot POST or send an Authorization header.

export class SSEParser {
  constructor() {
    this.buffer = "";
    this.data = [];
    this.event = "";
  }

  /** Feed decoded text; returns the events completed by it, as {event, data}. */
  feed(chunk) {
    let text = this.buffer + chunk;
    let held = "";
    if (text.endsWith("\r")) {
      held = "\r"; // may be the first half of \r\n
      text = text.slice(0, -1);
    }
    const lines = text.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + held;
    const events = [];
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) events.push({ event: this.event || "message", data: this.data.join("\n") });
        this.data = [];
        this.event = "";
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") this.data.push(value);
        else if (field === "event") this.event = value;
      }
    }
    return events;
  }
}
