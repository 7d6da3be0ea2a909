// TeX math for marked, rendered by KaTeX: $$...$$ and \[...\] as blocks, $...$ and \(...\) inline.
// KaTeX runs untrusted: no \href/\url/\includegraphics/\html* (trust: false), bounded sizes and
// macro expansion; errors render as the source text in red instead of throwing.

import katex from "../vendor/katex/katex.mjs";

const OPTIONS = { throwOnError: false, trust: false, strict: "ignore", maxSize: 50, maxExpand: 1000, output: "htmlAndMathml" };

function render(tex, displayMode) {
  try {
    return katex.renderToString(tex, { ...OPTIONS, displayMode });
  } catch {
    return `<code>${tex.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</code>`;
  }
}

const BLOCK = /^(?:\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\])[ \t]*(?:\n+|$)/;
const INLINE_DISPLAY = /^\$\$(?!\$)([^$]+?)\$\$/;
// $x$: no space just inside the dollars, none of them escaped, no digit right after (so "$5 and $6"
// stays text).
const INLINE = /^\$(?![\s$])((?:\\.|[^\\$\n])+?)(?<![\s\\])\$(?!\d)/;
const INLINE_PAREN = /^\\\(([\s\S]+?)\\\)/;

export function mathExtension() {
  return {
    extensions: [
      {
        name: "mathBlock",
        level: "block",
        start(src) {
          const i = src.search(/\$\$|\\\[/);
          return i < 0 ? undefined : i;
        },
        tokenizer(src) {
          const match = BLOCK.exec(src);
          if (match) return { type: "mathBlock", raw: match[0], text: (match[1] ?? match[2]).trim() };
          return undefined;
        },
        renderer: (token) => `<div class="math-block">${render(token.text, true)}</div>\n`,
      },
      {
        name: "mathInline",
        level: "inline",
        start(src) {
          const i = src.search(/\$|\\\(/);
          return i < 0 ? undefined : i;
        },
        tokenizer(src) {
          let match = INLINE_DISPLAY.exec(src);
          if (match) return { type: "mathInline", raw: match[0], text: match[1].trim(), display: true };
          match = INLINE.exec(src) || INLINE_PAREN.exec(src);
          if (match) return { type: "mathInline", raw: match[0], text: match[1].trim(), display: false };
          return undefined;
        },
        renderer: (token) => render(token.text, token.display),
      },
    ],
  };
}
