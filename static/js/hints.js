/* Blameless writing hints for the editor (issue 4, item 8).
 *
 * As the body changes (debounced), POSTs it with the people the form names (authors, incident
 * commander, action-item owners) to /api/v1/hints and lists the hints in #hints: the phrase,
 * its line and a suggestion. Clicking a hint selects the phrase in the textarea. Phrases are
 * also underlined in #preview. Hints are advice: nothing here stops a save.
 *
 * Needs #body and #hints; uses window.WikiEditor (getBody, onBodyChange) when it exists and
 * listens to the textarea otherwise. Plain JS, no build step.
 */
(function () {
  "use strict";

  var body = document.getElementById("body");
  var box = document.getElementById("hints");
  if (!body || !box || !window.fetch) {
    return;
  }
  var editor = window.WikiEditor || null;
  var endpoint = box.getAttribute("data-hints-url") || "/api/v1/hints";
  var DELAY = 400;
  /* Past the size a document may have, the save will be refused anyway: send nothing. */
  var editorForm = body.form || document.getElementById("editor-form");
  var MAX_CHARS = parseInt(editorForm && editorForm.getAttribute("data-max-bytes"), 10) || 2000000;
  var MAX_SHOWN = 100;
  var timer = null;
  var sequence = 0;
  var inFlight = null;
  var current = { text: "", hints: [] };

  function getBody() {
    if (editor && typeof editor.getBody === "function") {
      return editor.getBody();
    }
    return body.value;
  }

  /* People the document names: the hints flag "<name> failed/deleted/pushed …" for them. */
  function names() {
    var form = body.form || document.getElementById("editor-form") || document;
    var fields = form.querySelectorAll(
      '[name="authors"], [name="incident_commander"], [name*="owner"]'
    );
    var out = [];
    Array.prototype.forEach.call(fields, function (field) {
      String(field.value || "").split(",").forEach(function (name) {
        name = name.trim();
        if (name && out.indexOf(name) === -1) {
          out.push(name);
        }
      });
    });
    return out;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  }

  function check() {
    var text = getBody();
    var mine = ++sequence;
    if (inFlight && typeof inFlight.abort === "function") {
      inFlight.abort();
    }
    inFlight = window.AbortController ? new AbortController() : null;
    if (!text.trim() || text.length > MAX_CHARS) {
      render(text, []);
      return;
    }
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": window.wikiCsrfToken()
      },
      body: JSON.stringify({ text: text, names: names() }),
      signal: inFlight ? inFlight.signal : undefined
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (mine === sequence && data && Array.isArray(data.hints)) {
          render(text, data.hints);
        }
      })
      .catch(function () {
        /* Offline or aborted: keep the last hints; they are advice only. */
      });
  }

  /* Offsets from the server count code points; the textarea counts UTF-16 units. */
  function toUnits(text, codePoints) {
    var units = 0;
    for (var n = 0; n < codePoints && units < text.length; n++) {
      var c = text.charCodeAt(units);
      units += c >= 0xd800 && c <= 0xdbff && units + 1 < text.length ? 2 : 1;
    }
    return units;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function render(text, hints) {
    current = { text: text, hints: hints };
    box.textContent = "";
    markPreview();
    if (!hints.length) {
      box.classList.remove("hints-panel");
      return;
    }
    box.classList.add("hints-panel");
    box.appendChild(el("h2", "hints-panel__title",
      hints.length === 1 ? "1 writing hint" : hints.length + " writing hints"));
    box.appendChild(el("p", "hints-panel__note",
      "Blameless wording: suggestions only, they never stop a save."));
    var list = el("ul", "hints-list");
    hints.slice(0, MAX_SHOWN).forEach(function (hint) {
      var item = el("li");
      var button = el("button", "hint");
      button.type = "button";
      button.title = "Select this phrase in the text";
      button.appendChild(el("span", "hint__phrase", hint.phrase));
      button.appendChild(el("span", "hint__line", "line " + hint.line));
      button.appendChild(el("span", "hint__suggestion", hint.suggestion));
      button.addEventListener("click", function () {
        select(hint);
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    box.appendChild(list);
    if (hints.length > MAX_SHOWN) {
      box.appendChild(el("p", "hints-more", "… and " + (hints.length - MAX_SHOWN) + " more."));
    }
  }

  /* Select the hint's phrase; if the text changed since, the nearest occurrence of it. */
  function select(hint) {
    var value = body.value;
    var start = toUnits(current.text, hint.start);
    var end = toUnits(current.text, hint.end);
    if (value.slice(start, end) !== hint.phrase) {
      var before = value.lastIndexOf(hint.phrase, start);
      var after = value.indexOf(hint.phrase, start);
      var found = after === -1 ? before
        : before === -1 ? after
        : (start - before <= after - start ? before : after);
      if (found === -1) {
        schedule();
        return;
      }
      start = found;
      end = found + hint.phrase.length;
    }
    body.focus();
    body.setSelectionRange(start, end);
    body.scrollTop = Math.max(0, offsetTop(value.slice(0, start)) - body.clientHeight / 3);
  }

  /* How far down the textarea ``text`` reaches, wrapped lines included: measured on an
     invisible copy with the same width and font. */
  function offsetTop(text) {
    var style = window.getComputedStyle(body);
    var mirror = document.createElement("div");
    ["boxSizing", "width", "paddingTop", "paddingRight", "paddingBottom", "paddingLeft",
      "borderTopWidth", "borderRightWidth", "borderBottomWidth", "borderLeftWidth",
      "fontFamily", "fontSize", "fontWeight", "lineHeight", "letterSpacing", "tabSize",
      "wordSpacing"].forEach(function (name) {
      mirror.style[name] = style[name];
    });
    mirror.style.position = "absolute";
    mirror.style.visibility = "hidden";
    mirror.style.top = "0";
    mirror.style.left = "-9999px";
    mirror.style.whiteSpace = "pre-wrap";
    mirror.style.overflowWrap = "break-word";
    mirror.style.borderStyle = "solid";
    mirror.textContent = text + "\u200b";
    document.body.appendChild(mirror);
    var height = mirror.offsetHeight;
    document.body.removeChild(mirror);
    return height;
  }

  /* Underline the phrases in the rendered preview (not inside code). */
  var preview = document.getElementById("preview");
  var observer = null;

  function markPreview() {
    if (!preview) {
      return;
    }
    if (observer) {
      observer.disconnect();
    }
    Array.prototype.forEach.call(preview.querySelectorAll("mark.hint-mark"), function (mark) {
      mark.replaceWith(document.createTextNode(mark.textContent));
    });
    preview.normalize();
    var bySuggestion = {};
    current.hints.forEach(function (hint) {
      var phrase = hint.phrase.replace(/\s+/g, " ");
      if (phrase.trim()) {
        bySuggestion[phrase] = hint.suggestion;
      }
    });
    var phrases = Object.keys(bySuggestion).sort(function (a, b) {
      return b.length - a.length;
    });
    if (phrases.length) {
      var walker = document.createTreeWalker(preview, NodeFilter.SHOW_TEXT, {
        acceptNode: function (node) {
          return node.parentNode.closest("code, pre, mark, script, style")
            ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT;
        }
      });
      var nodes = [];
      while (walker.nextNode()) {
        nodes.push(walker.currentNode);
      }
      nodes.forEach(function (node) {
        wrap(node, phrases, bySuggestion);
      });
    }
    if (window.MutationObserver) {
      observer = observer || new MutationObserver(function () {
        markPreview();
      });
      observer.observe(preview, { childList: true, subtree: true });
    }
  }

  function wrap(node, phrases, bySuggestion) {
    var text = node.nodeValue.replace(/\s+/g, " ");
    var best = null;
    phrases.forEach(function (phrase) {
      var at = text.indexOf(phrase);
      if (at !== -1 && (best === null || at < best.at)) {
        best = { at: at, phrase: phrase };
      }
    });
    if (!best || text.length !== node.nodeValue.length) {
      return; /* collapsed whitespace changed offsets: leave this node alone */
    }
    var middle = node.splitText(best.at);
    var rest = middle.splitText(best.phrase.length);
    var mark = document.createElement("mark");
    mark.className = "hint-mark";
    mark.title = bySuggestion[best.phrase];
    mark.textContent = middle.nodeValue;
    middle.replaceWith(mark);
    wrap(rest, phrases, bySuggestion);
  }

  if (editor && typeof editor.onBodyChange === "function") {
    editor.onBodyChange(schedule);
  } else {
    body.addEventListener("input", schedule);
  }
  var form = body.form || document.getElementById("editor-form");
  if (form) {
    form.addEventListener("change", function (event) {
      var name = event.target && event.target.name ? event.target.name : "";
      if (name === "authors" || name === "incident_commander" || name.indexOf("owner") !== -1) {
        schedule();
      }
    });
  }
  check();
})();
