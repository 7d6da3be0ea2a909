#!/usr/bin/env bash
# Vendors the web chat's browser libraries: installs the exact versions pinned in package-lock.json
# (`npm ci`, no install scripts) and copies only the files the web chat loads, with each package's
# LICENSE, into mingyan/web/static/vendor/, then writes vendor/README.md (package, version,
# license, sha256 of every file). Commit the result: users and `make serve` never need npm.
#
# To upgrade: change a version in package.json, `npm install --package-lock-only --ignore-scripts`,
# run this script, run `.venv/bin/python -m pytest tests/browser`, commit.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund

OUT=../mingyan/web/static/vendor
NM=node_modules
rm -rf "$OUT"
mkdir -p "$OUT"/{marked,dompurify,highlight,katex/fonts,swagger-ui}

# marked: markdown -> HTML (GFM), ES module build.
cp "$NM/marked/lib/marked.esm.js" "$NM/marked/LICENSE" "$OUT/marked/"
# DOMPurify: HTML sanitizer, ES module build; dual-licensed MPL-2.0 OR Apache-2.0.
cp "$NM/dompurify/dist/purify.es.mjs" "$NM/dompurify/LICENSE" "$OUT/dompurify/"
# highlight.js: the project's prebuilt ES module with its "common" languages (the npm package
# `highlight.js` ships CommonJS sources only; @highlightjs/cdn-assets is its official build).
cp "$NM/@highlightjs/cdn-assets/es/highlight.min.js" "$NM/@highlightjs/cdn-assets/LICENSE" "$OUT/highlight/"
# KaTeX: TeX math -> HTML, ES module build, its CSS, and its fonts (woff2: every browser the web
# chat supports picks woff2, the first source the CSS lists).
cp "$NM/katex/dist/katex.mjs" "$NM/katex/dist/katex.min.css" "$NM/katex/LICENSE" "$OUT/katex/"
cp "$NM"/katex/dist/fonts/*.woff2 "$OUT/katex/fonts/"
# Swagger UI: the API reference at /docs (off unless `serve --api-docs`); its standalone bundle and
# CSS. (Its dependency @scarf/scarf is an install-time telemetry script: --ignore-scripts skips it.)
cp "$NM/swagger-ui-dist/swagger-ui-bundle.js" "$NM/swagger-ui-dist/swagger-ui.css" "$NM/swagger-ui-dist/LICENSE" "$OUT/swagger-ui/"

version() { node -p "require('./$NM/$1/package.json').version"; }
license() { node -p "require('./$NM/$1/package.json').license"; }
{
  echo "# Vendored browser libraries"
  echo
  echo "Copied by \`web-vendor/update.sh\` from the npm registry (exact versions pinned in"
  echo "\`web-vendor/package-lock.json\`). Do not edit these files; run the script instead."
  echo
  echo "| package | version | license | folder |"
  echo "|---|---|---|---|"
  for entry in marked:marked dompurify:dompurify @highlightjs/cdn-assets:highlight katex:katex swagger-ui-dist:swagger-ui; do
    pkg=${entry%%:*}; dir=${entry##*:}
    echo "| $pkg | $(version "$pkg") | $(license "$pkg") | \`$dir/\` |"
  done
  echo
  echo "## sha256"
  echo
  echo '```'
  (cd "$OUT" && find . -type f ! -name README.md | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum)
  echo '```'
} > "$OUT/README.md"
echo "vendored into $OUT"
