"""Tools from MCP servers: the client (stdio children and streamable HTTP), the registry of the
servers an administrator registered, the encryption of their auth headers, and approvals of calls
to side-effecting tools. The chat service's tool loop (mingyan.chat.tool_loop) uses them."""
