/* The CSRF token for the page's POSTs (sent as X-CSRFToken), shared by every script.
 * From <meta name="csrf-token">, else the editor, else any csrf_token form field; "" if none. */
window.wikiCsrfToken = function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    return meta.getAttribute("content") || "";
  }
  if (window.WikiEditor && typeof window.WikiEditor.csrfToken === "function") {
    return window.WikiEditor.csrfToken() || "";
  }
  var field = document.querySelector('input[name="csrf_token"]');
  return field ? field.value : "";
};
