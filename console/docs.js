// docs.js - renders /openapi.yaml with Swagger UI (swagger-ui-bundle.js,
// served by the node like every other file here). "Try it out" goes to the
// node that serves the page: the document's servers are replaced by this
// page's origin once it is parsed. The console's token, when one is set,
// is sent with every request unless the Authorize dialog set another.

import { getToken } from "./api.js";

// Points the document's servers at the node serving this page.
function sameNode() {
  return {
    statePlugins: {
      spec: {
        wrapActions: {
          updateJsonSpec: (next) => (json) => {
            const doc = { ...json, servers: [{ url: window.location.origin, description: "this node" }] };
            return next(doc);
          },
        },
      },
    },
  };
}

const target = document.getElementById("swagger-ui");
if (typeof window.SwaggerUIBundle !== "function") {
  target.textContent = "The API reference could not load its renderer (swagger-ui-bundle.js).";
} else {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.yaml",
    domNode: target,
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [sameNode],
    layout: "BaseLayout",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    filter: true,
    // The default validator badge loads an image from elsewhere: none here.
    validatorUrl: null,
    requestInterceptor: (req) => {
      const token = getToken();
      if (token && !req.headers.Authorization) req.headers.Authorization = `Bearer ${token}`;
      return req;
    },
  });
}
