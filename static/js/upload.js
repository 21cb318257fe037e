/* Images in the editor (issue 4, item 10).
 *
 * Paste an image into #body, drop one on it, or pick one with the "Image…" button that this
 * adds to #editor-tools: it is uploaded to /api/v1/assets and the Markdown that shows it is
 * inserted at the cursor (a "![Uploading…]()" placeholder first, replaced when the upload is
 * done, removed with a message when it fails). The server checks type and size.
 * Plain JS, no build step.
 */
(function () {
  "use strict";

  var body = document.getElementById("body");
  if (!body || !window.fetch || !window.FormData) {
    return;
  }
  var tools = document.getElementById("editor-tools");
  var endpoint = (tools && tools.getAttribute("data-upload-url")) || "/api/v1/assets";
  var ACCEPT = "image/png,image/jpeg,image/gif,image/webp";
  var pending = 0;
  var counter = 0;

  // ------------------------------------------------------------------ status line
  var status = document.createElement("span");
  status.className = "upload-status";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  if (tools) {
    tools.appendChild(status);
  } else {
    body.insertAdjacentElement("afterend", status);
  }

  function say(message, isError) {
    status.textContent = message || "";
    status.classList.toggle("upload-status--error", !!isError);
  }

  // ------------------------------------------------------------------ editing the text
  function notify() {
    body.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function insert(text) {
    var editor = window.WikiEditor;
    if (editor && typeof editor.insertAtCursor === "function") {
      editor.insertAtCursor(text);
      return;
    }
    var start = body.selectionStart || 0;
    var end = body.selectionEnd || start;
    body.value = body.value.slice(0, start) + text + body.value.slice(end);
    body.selectionStart = body.selectionEnd = start + text.length;
    notify();
  }

  /* Replace the first occurrence of ``placeholder``, keeping the cursor where it was. */
  function replace(placeholder, text) {
    var value = body.value;
    var at = value.indexOf(placeholder);
    if (at === -1) {
      return false; /* the writer deleted it meanwhile: respect that */
    }
    var start = body.selectionStart;
    var end = body.selectionEnd;
    var shift = text.length - placeholder.length;
    body.value = value.slice(0, at) + text + value.slice(at + placeholder.length);
    if (document.activeElement === body) {
      body.selectionStart = start > at ? Math.max(at, start + shift) : start;
      body.selectionEnd = end > at ? Math.max(at, end + shift) : end;
    }
    notify();
    return true;
  }

  // ------------------------------------------------------------------ uploading
  function upload(file) {
    counter += 1;
    pending += 1;
    /* Several uploads at once need placeholders that tell them apart. */
    var placeholder = pending === 1 ? "![Uploading…]()" : "![Uploading… " + counter + "]()";
    /* An image on a line of its own reads best in Markdown. */
    var before = body.value.slice(0, body.selectionStart || 0);
    var lead = before && !/\n$/.test(before) ? "\n" : "";
    insert(lead + placeholder + "\n");
    say("Uploading " + (file.name || "image") + "…");

    var form = new FormData();
    form.append("file", file, file.name || "image.png");
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": window.wikiCsrfToken() },
      body: form
    })
      .then(function (response) {
        return response.json().catch(function () {
          return {};
        }).then(function (data) {
          if (!response.ok || !data.markdown) {
            throw new Error(data.error || "The upload failed (" + response.status + ").");
          }
          return data;
        });
      })
      .then(function (data) {
        if (!replace(placeholder, data.markdown)) {
          insert(data.markdown);
        }
        say("Uploaded " + (file.name || "image") + ".");
      })
      .catch(function (error) {
        replace(lead + placeholder + "\n", "") || replace(placeholder + "\n", "") ||
          replace(placeholder, "");
        say((file.name ? file.name + ": " : "") +
          (error && error.message ? error.message : "The upload failed."), true);
      })
      .then(function () {
        pending -= 1;
      });
  }

  // Paste: only when the clipboard holds files (a screenshot); text pastes as usual.
  body.addEventListener("paste", function (event) {
    var data = event.clipboardData;
    if (!data) {
      return;
    }
    var files = Array.prototype.slice.call(data.files || []);
    if (!files.length && data.items) {
      files = Array.prototype.map.call(data.items, function (item) {
        return item.kind === "file" ? item.getAsFile() : null;
      }).filter(Boolean);
    }
    files = files.filter(function (file) {
      return /^image\//.test(file.type);
    });
    if (!files.length) {
      return;
    }
    event.preventDefault();
    files.forEach(upload);
  });

  // Drop: any file is sent; the server says why it refuses one that is no image.
  function hasFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }

  body.addEventListener("dragover", function (event) {
    if (hasFiles(event)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      body.classList.add("is-drop-target");
    }
  });
  body.addEventListener("dragleave", function () {
    body.classList.remove("is-drop-target");
  });
  body.addEventListener("drop", function (event) {
    body.classList.remove("is-drop-target");
    if (!hasFiles(event)) {
      return;
    }
    event.preventDefault();
    body.focus();
    Array.prototype.forEach.call(event.dataTransfer.files, upload);
  });

  // The "Image…" button and its file input.
  if (tools) {
    var input = document.createElement("input");
    input.type = "file";
    input.accept = ACCEPT;
    input.multiple = true;
    input.hidden = true;
    input.id = "upload-image-input";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "tools-button";
    button.textContent = "Image…";
    button.title = "Upload a PNG, JPEG, GIF or WebP image (or paste or drop one into the text)";
    button.addEventListener("click", function () {
      input.click();
    });
    input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files || []);
      input.value = "";
      body.focus();
      files.forEach(upload);
    });
    tools.insertBefore(input, status);
    tools.insertBefore(button, input);
  }
})();
