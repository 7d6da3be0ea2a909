// The API reference at /docs (served only with `mingyan serve --api-docs`): Swagger UI from the
// vendored bundle, reading this server's /openapi.json. No validator badge (it would call
// validator.swagger.io) and no ?url= / ?configUrl= from the address bar.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    queryConfigEnabled: false,
    deepLinking: true,
  });
});
