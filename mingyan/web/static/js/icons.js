// Line icons as inline SVG built with DOM calls (no icon font, no glyphs that a system may lack).

const SVG = "http://www.w3.org/2000/svg";
const PATHS = {
  copy: "M9 9h10v12H9zM5 15V3h10",
  edit: "M4 20h4L19 9l-4-4L4 16zM14 6l4 4",
  regenerate: "M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7",
  info: "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 11v6M12 7.5v.5",
  more: "M5 12h.01M12 12h.01M19 12h.01",
  menu: "M4 6h16M4 12h16M4 18h16",
  close: "M6 6l12 12M18 6L6 18",
  settings: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19 12l2-1-1-3-2 .2-1.2-1.2.2-2-3-1-1 2h-1.6l-1-2-3 1 .2 2L7 7.2 5 7 4 10l2 1v2l-2 1 1 3 2-.2 1.2 1.2-.2 2 3 1 1-2h1.6l1 2 3-1-.2-2 1.2-1.2 2 .2 1-3-2-1z",
  theme: "M12 3a9 9 0 1 0 0 18V3z M12 3a9 9 0 0 1 0 18",
  down: "M12 5v14M6 13l6 6 6-6",
  check: "M5 12l5 5L20 7",
  flag: "M5 21V4h11l-2 4 2 4H5",
  pin: "M9 4h6l-1 6 4 3H6l4-3zM12 13v7",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15 9h.01",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
};

export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}

/** Replace the content of every [data-icon] element with its icon. */
export function applyIcons(root = document) {
  for (const el of root.querySelectorAll("[data-icon]")) el.replaceChildren(icon(el.dataset.icon));
}
