/* Postmortem Wiki — the editor, made nicer. The page works without this script: it is a plain
 * form whose Preview and "Add more rows" buttons re-render it on the server.
 *
 * With it: a formatting toolbar and shortcuts (Ctrl/⌘-S saves and keeps editing, Ctrl/⌘-B/I),
 * a live preview rendered by the server (POST /preview, debounced), rows added and removed in
 * place, comma-list autocomplete, drafts autosaved in this browser (drafts.js) and offered back,
 * and a size check before a save the server would refuse.
 *
 * Plug-ins (hints.js, chat-timeline.js, upload.js) use:
 *   WikiEditor.addTimelineRow(time, event)  → the row (a blank one is reused)
 *   WikiEditor.insertAtCursor(text)         → inserts into the body, undoable
 *   WikiEditor.getBody()                    → the body's Markdown
 *   WikiEditor.onBodyChange(callback)       → callback(body) after every change of the body
 *   WikiEditor.csrfToken()                  → the token to send with a POST (or "")
 */
(function () {
  "use strict";

  var form = document.getElementById("editor-form");
  if (!form) return;
  var body = document.getElementById("body");
  var preview = document.getElementById("preview");
  var previewStatus = document.getElementById("preview-status");
  var autosaveStatus = document.getElementById("autosave-status");
  var offer = document.getElementById("draft-offer");
  var drafts = window.WikiDrafts;
  var key = form.getAttribute("data-draft-key");
  var docId = form.getAttribute("data-doc-id");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
  var previewUrl = form.getAttribute("data-preview-url");
  var bodyListeners = [];

  /* ------------------------------------------------------------ progressive enhancement */
  form.classList.add("is-enhanced");
  Array.prototype.forEach.call(document.querySelectorAll(".js-only, .editor-toolbar"), function (el) {
    el.hidden = false;
  });
  Array.prototype.forEach.call(document.querySelectorAll(".no-js-only"), function (el) {
    el.hidden = true;
  });

  var saveContinue = document.createElement("button");
  saveContinue.type = "submit";
  saveContinue.name = "action";
  saveContinue.value = "save-continue";
  saveContinue.hidden = true;
  saveContinue.tabIndex = -1;
  form.appendChild(saveContinue);

  /* ------------------------------------------------------------ body editing */
  function bodyChanged() {
    var text = body.value;
    bodyListeners.forEach(function (callback) {
      try {
        callback(text);
      } catch (e) {
        if (window.console) window.console.error(e);
      }
    });
  }

  function replaceSelection(text, selectFrom, selectTo) {
    var start = body.selectionStart;
    body.focus();
    var done = false;
    try {
      // execCommand keeps the browser's undo history; setRangeText is the fallback.
      done = document.execCommand && document.execCommand("insertText", false, text);
    } catch (e) {
      done = false;
    }
    if (!done) {
      body.setRangeText(text, body.selectionStart, body.selectionEnd, "end");
      body.dispatchEvent(new Event("input", { bubbles: true }));
    }
    if (selectFrom !== undefined) {
      body.setSelectionRange(start + selectFrom, start + selectTo);
    }
  }

  function insertAtCursor(text) {
    replaceSelection(String(text));
  }

  function wrap(before, after, placeholder) {
    var selected = body.value.slice(body.selectionStart, body.selectionEnd) || placeholder;
    replaceSelection(before + selected + after, before.length, before.length + selected.length);
  }

  function prefixLines(prefix) {
    var value = body.value;
    var start = value.lastIndexOf("\n", body.selectionStart - 1) + 1;
    var end = value.indexOf("\n", body.selectionEnd);
    if (end === -1) end = value.length;
    body.setSelectionRange(start, end);
    var lines = value.slice(start, end).split("\n").map(function (line) {
      return line.indexOf(prefix) === 0 ? line.slice(prefix.length) : prefix + line;
    });
    replaceSelection(lines.join("\n"));
  }

  var formats = {
    bold: function () { wrap("**", "**", "bold text"); },
    italic: function () { wrap("_", "_", "italic text"); },
    heading: function () { prefixLines("## "); },
    list: function () { prefixLines("- "); },
    code: function () {
      var selected = body.value.slice(body.selectionStart, body.selectionEnd);
      if (selected.indexOf("\n") >= 0) wrap("```\n", "\n```", "code");
      else wrap("`", "`", "code");
    },
    link: function () {
      var selected = body.value.slice(body.selectionStart, body.selectionEnd) || "link text";
      var text = "[" + selected + "](https://)";
      replaceSelection(text, selected.length + 3, selected.length + 11);
    }
  };

  Array.prototype.forEach.call(document.querySelectorAll("[data-md]"), function (button) {
    button.addEventListener("click", function () {
      var format = formats[button.getAttribute("data-md")];
      if (format) format();
    });
  });

  document.addEventListener("keydown", function (event) {
    var mod = event.ctrlKey || event.metaKey;
    var k = (event.key || "").toLowerCase();
    if (mod && !event.altKey && k === "s") {
      event.preventDefault();
      submitWith(saveContinue);
      return;
    }
    if (mod && !event.altKey && event.target === body && (k === "b" || k === "i")) {
      event.preventDefault();
      formats[k === "b" ? "bold" : "italic"]();
    }
  });

  // Enter in a one-line input would submit the form: not while writing.
  form.addEventListener("keydown", function (event) {
    var t = event.target;
    if (event.key === "Enter" && t.tagName === "INPUT" && t.type !== "submit" && t.type !== "button"
        && t.type !== "checkbox" && t.type !== "radio") {
      event.preventDefault();
      if (t.name === "tl_event" || t.name === "ai_title") {
        var row = addRow(t.name === "tl_event" ? "tl" : "ai", t.closest(".rows__row"));
        var first = row && row.querySelector("input, textarea, select");
        if (first) first.focus();
      }
    }
  });

  function submitWith(button) {
    if (form.requestSubmit) form.requestSubmit(button);
    else button.click();
  }

  /* ------------------------------------------------------------ rows */
  var CONTAINERS = {
    tl: "timeline-rows", ai: "action-item-rows", pat: "pat-rows", notpat: "notpat-rows",
    example: "example-rows", not_example: "not_example-rows"
  };
  var ADD_ACTIONS = {
    "add-tl": "tl", "add-ai": "ai", "add-pat": "pat", "add-notpat": "notpat",
    "add-example": "example", "add-not-example": "not_example"
  };

  function addRow(prefix, after) {
    var template = document.getElementById(prefix + "-row-template");
    var container = document.getElementById(CONTAINERS[prefix]);
    if (!template || !container) return null;
    var row = template.content.firstElementChild.cloneNode(true);
    if (after && after.parentNode === container) container.insertBefore(row, after.nextSibling);
    else container.appendChild(row);
    return row;
  }

  function rowsOf(prefix) {
    var container = document.getElementById(CONTAINERS[prefix]);
    return container ? Array.prototype.slice.call(container.querySelectorAll(".rows__row")) : [];
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-add-row]"), function (button) {
    button.addEventListener("click", function (event) {
      var prefix = ADD_ACTIONS[button.getAttribute("data-add-row")];
      if (!prefix) return;
      event.preventDefault();
      var row = addRow(prefix);
      var first = row && row.querySelector("input:not([type=hidden]), textarea, select");
      if (first) first.focus();
      changed();
    });
  });

  form.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-remove-row]");
    if (!button) return;
    var row = button.closest(".rows__row");
    if (!row) return;
    var next = row.nextElementSibling || row.previousElementSibling;
    row.parentNode.removeChild(row);
    var focus = next && next.querySelector("input:not([type=hidden]), textarea");
    if (focus) focus.focus();
    changed(true);
  });

  function addTimelineRow(time, event) {
    var rows = rowsOf("tl");
    var row = null;
    for (var i = 0; i < rows.length; i++) {
      var inputs = rows[i].querySelectorAll("input");
      if (!inputs[0].value.trim() && !inputs[1].value.trim()) {
        row = rows[i];
        break;
      }
    }
    row = row || addRow("tl");
    if (!row) return null;
    var fields = row.querySelectorAll("input");
    fields[0].value = time == null ? "" : String(time);
    fields[1].value = event == null ? "" : String(event);
    changed(true);
    return row;
  }

  /* ------------------------------------------------------------ comma-list autocomplete */
  Array.prototype.forEach.call(form.querySelectorAll("input[data-suggest]"), function (input) {
    var source = document.getElementById("dl-" + input.getAttribute("data-suggest"));
    if (!source) return;
    var names = Array.prototype.map.call(source.options, function (o) { return o.value; });
    var own = document.createElement("datalist");
    own.id = "dl-" + input.name + "-live";
    document.body.appendChild(own);
    input.setAttribute("list", own.id);
    function refresh() {
      var value = input.value;
      var cut = value.lastIndexOf(",");
      var head = cut >= 0 ? value.slice(0, cut + 1) + " " : "";
      var typed = (cut >= 0 ? value.slice(cut + 1) : value).trim().toLowerCase();
      var chosen = head.split(",").map(function (s) { return s.trim().toLowerCase(); });
      own.textContent = "";
      names.filter(function (name) {
        var lower = name.toLowerCase();
        return chosen.indexOf(lower) < 0 && (!typed || lower.indexOf(typed) >= 0);
      }).slice(0, 50).forEach(function (name) {
        var option = document.createElement("option");
        option.value = head + name;
        own.appendChild(option);
      });
    }
    input.addEventListener("input", refresh);
    input.addEventListener("focus", refresh);
  });

  /* ------------------------------------------------------------ live preview */
  var previewTimer = null;
  var previewSeq = 0;
  var PREVIEW_DELAY = 300;

  function byteLength(text) {
    return new Blob([text]).size;
  }

  function renderPreview() {
    var seq = ++previewSeq;
    if (maxBytes && body.value.length > maxBytes / 4 && byteLength(body.value) > maxBytes) {
      preview.innerHTML = "";
      var note = document.createElement("p");
      note.className = "preview__empty";
      note.textContent = "The text is over " + maxBytes.toLocaleString() + " bytes, too long to "
        + "preview or save.";
      preview.appendChild(note);
      return Promise.resolve();
    }
    var data = new FormData(form);
    data.set("action", "preview");
    if (previewStatus) previewStatus.textContent = "updating…";
    return fetch(previewUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text().then(function (html) {
        if (seq !== previewSeq) return;
        if (response.ok || response.status === 413) {
          preview.innerHTML = html; // sanitised by the server's renderer
          preview.setAttribute("data-rendered", String(seq));
          if (previewStatus) previewStatus.textContent = "";
        } else {
          if (previewStatus) previewStatus.textContent = "could not update (" + response.status + ")";
        }
      });
    }).catch(function () {
      if (seq === previewSeq && previewStatus) previewStatus.textContent = "offline: not updated";
    });
  }

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(renderPreview, PREVIEW_DELAY);
  }

  /* ------------------------------------------------------------ autosave */
  var SKIP = { csrf_token: 1, action: 1, draft_key: 1, previous_draft_key: 1, base_revision: 1 };

  function serialize() {
    var out = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || SKIP[el.name] || el.disabled) return;
      if (el.type === "checkbox" || el.type === "radio" || el.type === "submit" || el.type === "button") return;
      out.push([el.name, el.value]);
    });
    return out;
  }

  var initial = JSON.stringify(serialize());
  var baseInput = form.elements.base_revision;
  var saveTimer = null;

  function setStatus(text) {
    if (autosaveStatus) autosaveStatus.textContent = text;
  }

  function timeText(iso) {
    var when = new Date(iso);
    var sameDay = when.toDateString() === new Date().toDateString();
    return sameDay ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function saveDraft() {
    clearTimeout(saveTimer);
    if (!drafts || !key) return Promise.resolve();
    var fields = serialize();
    if (JSON.stringify(fields) === initial) {
      return drafts.remove(key).then(function () { setStatus(""); });
    }
    var draft = {
      savedAt: new Date().toISOString(),
      base: baseInput ? baseInput.value : "",
      title: (form.elements.title && form.elements.title.value) || "",
      url: window.location.pathname + window.location.search,
      fields: fields
    };
    return drafts.save(key, draft).then(function () {
      setStatus("Draft kept in this browser " + timeText(draft.savedAt));
    }).catch(function () {
      setStatus("Could not keep a draft in this browser");
    });
  }

  function changed(now) {
    clearTimeout(saveTimer);
    if (now) saveDraft();
    else saveTimer = setTimeout(saveDraft, 400);
  }

  form.addEventListener("input", function (event) {
    changed();
    var t = event.target;
    if (t === body) bodyChanged();
    if (t === body || (t.name && t.name.indexOf("tl_") === 0)) schedulePreview();
  });
  form.addEventListener("change", function () { changed(); });
  window.addEventListener("pagehide", function () {
    if (JSON.stringify(serialize()) !== initial) saveDraft();
  });

  /* ------------------------------------------------------------ restoring a draft */
  function restore(draft, draftKey) {
    var wanted = {};
    draft.fields.forEach(function (pair) {
      (wanted[pair[0]] = wanted[pair[0]] || []).push(pair[1]);
    });
    var rowNames = { tl: "tl_time", ai: "ai_title", pat: "pat_kind", notpat: "notpat_kind",
      example: "example", not_example: "not_example" };
    Object.keys(rowNames).forEach(function (prefix) {
      var count = (wanted[rowNames[prefix]] || []).length;
      var rows = rowsOf(prefix);
      if (!rows.length && !count) return;
      for (var i = rows.length; i < count; i++) addRow(prefix);
      rows = rowsOf(prefix);
      for (var j = rows.length - 1; j >= count; j--) rows[j].parentNode.removeChild(rows[j]);
    });
    Object.keys(wanted).forEach(function (name) {
      var elements = form.querySelectorAll('[name="' + name.replace(/"/g, '\\"') + '"]');
      wanted[name].forEach(function (value, i) {
        var el = elements[i];
        if (!el || el.type === "checkbox" || el.type === "submit") return;
        if (el.tagName === "SELECT" && !Array.prototype.some.call(el.options, function (o) { return o.value === value; })) {
          var option = document.createElement("option");
          option.value = option.textContent = value;
          el.appendChild(option);
        }
        el.value = value;
      });
    });
    if (draft.base && baseInput && draft.base !== baseInput.value) {
      // The draft was written on an older revision: save on top of that one, so that a save
      // shows what changed since instead of overwriting it.
      baseInput.value = draft.base;
      key = draftKey;
      form.setAttribute("data-draft-key", key);
      if (form.elements.draft_key) form.elements.draft_key.value = key;
    }
    bodyChanged();
    schedulePreview();
    setStatus("Draft from " + timeText(draft.savedAt) + " restored");
  }

  function offerDraft(found) {
    var draft = found.draft;
    var older = draft.base && baseInput && draft.base !== baseInput.value;
    offer.textContent = "";
    var text = document.createElement("p");
    text.className = "draft-offer__text";
    text.textContent = "Restore unsaved draft from " + timeText(draft.savedAt) + "?" + (older
      ? " It was written on an older revision (" + draft.base.slice(0, 8) + "); saving it will "
        + "show what changed since, so nothing is overwritten."
      : " It was kept in this browser and differs from the saved version.");
    var yes = document.createElement("button");
    yes.type = "button";
    yes.className = "button button--primary";
    yes.textContent = "Restore draft";
    yes.setAttribute("data-draft-restore", "");
    var no = document.createElement("button");
    no.type = "button";
    no.className = "button";
    no.textContent = "Discard it";
    no.setAttribute("data-draft-discard", "");
    var buttons = document.createElement("div");
    buttons.className = "draft-offer__buttons";
    buttons.appendChild(yes);
    buttons.appendChild(no);
    offer.appendChild(text);
    offer.appendChild(buttons);
    offer.hidden = false;
    yes.addEventListener("click", function () {
      restore(draft, found.key);
      offer.hidden = true;
    });
    no.addEventListener("click", function () {
      drafts.remove(found.key);
      offer.hidden = true;
    });
  }

  function lookForDrafts() {
    if (!drafts || !key) return;
    var previous = form.elements.previous_draft_key ? form.elements.previous_draft_key.value : "";
    drafts.ready.then(function () {
      return drafts.load(key);
    }).then(function (draft) {
      if (draft && JSON.stringify(draft.fields) !== initial) {
        offerDraft({ key: key, draft: draft });
        return;
      }
      if (draft) drafts.remove(key);
      if (!docId) return;
      return drafts.list("wiki-draft:" + docId + ":").then(function (found) {
        found = found.filter(function (f) {
          return f.key !== key && f.key !== previous && f.draft && f.draft.fields
            && JSON.stringify(f.draft.fields) !== initial;
        }).sort(function (a, b) { return a.draft.savedAt < b.draft.savedAt ? 1 : -1; });
        if (found.length) offerDraft(found[0]);
      });
    });
  }

  /* ------------------------------------------------------------ saving */
  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var action = submitter ? submitter.value : "save";
    if (action && action.indexOf("add-") === 0) return;
    var size = maxBytes && body.value.length > maxBytes / 4 ? byteLength(body.value) : 0;
    if (size > maxBytes) {
      event.preventDefault();
      saveDraft();
      showBodyError("The text is " + size.toLocaleString() + " bytes; a document "
        + "can be at most " + maxBytes.toLocaleString() + " bytes. Nothing was sent. Your text is "
        + "kept as a draft in this browser: shorten it, or link big logs instead of pasting them.");
      return;
    }
    saveDraft(); // if the save fails in any way, the text is still here on the next visit
  });

  function showBodyError(message) {
    var box = document.getElementById("body-size-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "body-size-error";
      box.className = "field__error";
      box.setAttribute("role", "alert");
      body.parentNode.insertBefore(box, body.nextSibling);
    }
    box.textContent = message;
    body.setAttribute("aria-invalid", "true");
    body.focus();
  }

  /* ------------------------------------------------------------ start */
  window.WikiEditor = {
    addTimelineRow: addTimelineRow,
    insertAtCursor: insertAtCursor,
    getBody: function () { return body.value; },
    onBodyChange: function (callback) {
      if (typeof callback === "function") bodyListeners.push(callback);
    },
    csrfToken: function () {
      return form.elements.csrf_token ? form.elements.csrf_token.value : "";
    },
    form: form
  };

  renderPreview();
  lookForDrafts();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
