/* Postmortem Wiki — quick search ("typeahead") under the header's search box.
 *
 * After two characters (and a pause of DELAY ms) the box asks GET /api/v1/search for the first
 * LIMIT documents (?limit=6&facets=0) and lists them under itself: id, title, kind and severity
 * (when the answer has one). The word being typed also matches as a prefix (`bitfl` is sent as
 * `bitfl*`, see /search/help). Only the answer to the latest text is shown: a newer keystroke
 * aborts the request in flight and an older answer is dropped.
 *
 * Keyboard and screen readers: the WAI-ARIA combobox pattern (input role=combobox, a listbox of
 * options, aria-activedescendant). Down/Up move the highlight, Enter opens the highlighted
 * document (with none highlighted the form is submitted as before), Escape closes the list. The
 * last option, "Search for “…” — all results", submits the form.
 *
 * Titles come from content and are put in as text (textContent), never as HTML. Without
 * JavaScript, fetch or AbortController the box stays the plain form it always was; a failed
 * request (network, 5xx) just closes the list. Needs form.site-search with #site-search-q; reads
 * the API's address from the box's data-quicksearch-url. Plain JS, no build.
 */
(function () {
  "use strict";

  var form = document.querySelector("form.site-search");
  var input = document.getElementById("site-search-q");
  if (!form || !input || !window.fetch || !window.AbortController || !window.URLSearchParams) {
    return;
  }
  var endpoint = input.getAttribute("data-quicksearch-url") || "/api/v1/search";
  var DELAY = 150;      // ms of quiet typing before asking
  var MIN_CHARS = 2;    // shorter text asks nothing
  var LIMIT = 6;        // documents listed
  var PREFIX_MIN = 3;   // the word being typed becomes a prefix search from this many letters
  var MARGIN = 8;       // px kept free between the list and the edges of the screen
  var NARROW = 720;     // px: on screens this wide or less the list spans the screen (style.css)
  var SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4"];
  var KINDS = ["postmortem", "signature"];
  var OPERATORS = ["AND", "OR", "NOT"];

  var timer = null;
  var sequence = 0;      // bumped by every change of the text: older answers are dropped
  var request = null;    // the AbortController of the request in flight
  var options = [];      // [{el, url}] in order; url null for "Search for …"
  var active = -1;
  var shownFor = null;   // the text the list was built for

  var list = document.createElement("ul");
  list.id = "site-search-listbox";
  list.className = "quicksearch";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Quick search results");
  list.hidden = true;
  var status = document.createElement("div");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  form.appendChild(list);
  form.appendChild(status);

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-haspopup", "listbox");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");

  /** The query sent: the text, with the word being typed turned into a prefix (`bitfl*`) when
   * it is a plain word of PREFIX_MIN letters or more that is not inside quotes, not a
   * field:value, not an operator and not already finished (followed by a space). */
  function quickQuery(text) {
    var m = /(^|\s)(\S+)$/.exec(text);
    if (!m) {
      return text;
    }
    var word = m[2];
    var before = text.slice(0, text.length - word.length);
    var quotes = (before.match(/"/g) || []).length;
    if (word.length < PREFIX_MIN || !/^\p{L}+$/u.test(word) || quotes % 2 === 1 ||
        OPERATORS.indexOf(word) !== -1) {
      return text;
    }
    return before + word + "*";
  }

  function isOpen() {
    return !list.hidden;
  }

  function close() {
    setActive(-1);
    if (isOpen()) {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
    }
  }

  /** Forget any pending or in-flight request: its answer will not be shown. */
  function cancel() {
    clearTimeout(timer);
    timer = null;
    sequence += 1;
    if (request) {
      request.abort();
      request = null;
    }
  }

  function setActive(index) {
    if (active >= 0 && options[active]) {
      options[active].el.setAttribute("aria-selected", "false");
    }
    active = index;
    if (index < 0 || !options[index]) {
      active = -1;
      input.removeAttribute("aria-activedescendant");
      return;
    }
    var el = options[index].el;
    el.setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", el.id);
    if (el.scrollIntoView) {
      el.scrollIntoView({ block: "nearest" });
    }
  }

  /** A title as text, its `backtick` spans as <code> (as the wiki's pages show them). */
  function titleNodes(parent, title) {
    var parts = String(title || "").split(/`([^`\n]+)`/);
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i]) {
        continue;
      }
      if (i % 2 === 1) {
        var code = document.createElement("code");
        code.className = "title-code";
        code.textContent = parts[i];
        parent.appendChild(code);
      } else {
        parent.appendChild(document.createTextNode(parts[i]));
      }
    }
  }

  function span(className, text) {
    var el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  /** Only the path of a result's URL, on this origin: never another scheme or host. */
  function localUrl(url) {
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.pathname + parsed.search + parsed.hash;
    } catch (e) {
      return null;
    }
  }

  function addOption(el, url) {
    el.id = list.id + "-" + options.length;
    el.setAttribute("role", "option");
    el.setAttribute("aria-selected", "false");
    list.appendChild(el);
    options.push({ el: el, url: url });
  }

  function searchAllLabel(el, text) {
    el.textContent = "";
    el.appendChild(document.createTextNode("Search for “"));
    el.appendChild(span("quicksearch__query", text.trim()));
    el.appendChild(document.createTextNode("” — all results"));
  }

  function render(text, results) {
    list.textContent = "";
    options = [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
    var count = 0;
    results.slice(0, LIMIT).forEach(function (hit) {
      var url = hit && localUrl(hit.url);
      if (!url) {
        return;
      }
      var el = document.createElement("li");
      el.className = "quicksearch__option";
      el.appendChild(span("doc-id", String(hit.id || "")));
      var title = document.createElement("span");
      title.className = "quicksearch__title";
      titleNodes(title, hit.title);
      el.appendChild(title);
      var badges = document.createElement("span");
      badges.className = "quicksearch__badges";
      var kind = KINDS.indexOf(hit.kind) !== -1 ? hit.kind : "unknown";
      badges.appendChild(span("badge quicksearch__kind quicksearch__kind--" + kind,
                              String(hit.kind || "")));
      if (hit.severity) {
        var known = SEVERITIES.indexOf(hit.severity) !== -1;
        var sev = span("badge badge--" + (known ? hit.severity.toLowerCase() : "unknown"),
                       String(hit.severity));
        sev.title = "Severity";
        badges.appendChild(sev);
      }
      el.appendChild(badges);
      addOption(el, url);
      count += 1;
    });
    var all = document.createElement("li");
    all.className = "quicksearch__option quicksearch__all";
    searchAllLabel(all, text);
    addOption(all, null);
    shownFor = text;
    status.textContent = count === 0 ? "No matching documents" :
      count + (count === 1 ? " document" : " documents") + ", use the arrow keys to choose";
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    place();
  }

  /** Under the box, as wide as it or 28rem, right-aligned with it; never past the screen's
   * edges; on a narrow screen from one edge to the other. */
  function place() {
    if (!isOpen()) {
      return;
    }
    var screen = document.documentElement.clientWidth;
    var box = form.getBoundingClientRect();
    var rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    var room = screen - 2 * MARGIN;
    var width = screen <= NARROW ? room : Math.min(Math.max(box.width, 28 * rem), room);
    var left = Math.max(MARGIN, Math.min(box.right - width, screen - MARGIN - width));
    list.style.width = width + "px";
    list.style.left = (left - box.left) + "px";
  }

  function ask(text) {
    cancel();
    var mine = sequence;
    var controller = new AbortController();
    request = controller;
    var params = new URLSearchParams({ q: quickQuery(text), limit: String(LIMIT), facets: "0" });
    fetch(endpoint + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      signal: controller.signal
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (data) {
      if (mine !== sequence || input.value !== text) {
        return; // an older answer: the text has changed since
      }
      request = null;
      render(text, (data && data.results) || []);
    }).catch(function () {
      if (mine === sequence) { // failed (not replaced): say nothing, keep typing working
        request = null;
        close();
      }
    });
  }

  function schedule() {
    var text = input.value;
    cancel();
    setActive(-1);
    if (text.trim().length < MIN_CHARS) {
      close();
      shownFor = null;
      return;
    }
    if (isOpen() && options.length) { // until the answer comes, "Search for" says what's typed
      searchAllLabel(options[options.length - 1].el, text);
    }
    timer = setTimeout(function () { ask(text); }, DELAY);
  }

  function choose(index, event) {
    var option = options[index];
    if (!option) {
      return;
    }
    cancel();
    if (option.url === null) {
      close();
      if (form.requestSubmit) {
        form.requestSubmit();
      } else {
        form.submit();
      }
      return;
    }
    if (event && (event.ctrlKey || event.metaKey || event.shiftKey || event.button === 1)) {
      window.open(option.url, "_blank", "noopener");
      return;
    }
    close();
    window.location.assign(option.url);
  }

  input.addEventListener("input", schedule);

  input.addEventListener("keydown", function (event) {
    if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var key = event.key;
    if (key === "ArrowDown" || key === "ArrowUp") {
      if (!isOpen()) {
        if (shownFor !== null && shownFor === input.value && options.length) {
          list.hidden = false; // reopen what was shown for this text
          input.setAttribute("aria-expanded", "true");
          place();
        } else if (input.value.trim().length >= MIN_CHARS) {
          ask(input.value);
          event.preventDefault();
          return;
        } else {
          return;
        }
      }
      event.preventDefault();
      var n = options.length;
      if (key === "ArrowDown") {
        setActive(active + 1 >= n ? -1 : active + 1);
      } else {
        setActive(active < 0 ? n - 1 : active - 1);
      }
    } else if (key === "Enter") {
      if (isOpen() && active >= 0) {
        event.preventDefault();
        choose(active, event);
      } else {
        cancel(); // the form submits as it always did
        close();
      }
    } else if (key === "Escape") {
      event.preventDefault(); // a search field would clear itself: Escape only closes the list
      cancel();
      close();
    }
  });

  // Keep the focus in the box while clicking an option, then open it.
  list.addEventListener("mousedown", function (event) {
    event.preventDefault();
  });
  list.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[role=option]");
    for (var i = 0; el && i < options.length; i++) {
      if (options[i].el === el) {
        choose(i, event);
        return;
      }
    }
  });
  list.addEventListener("auxclick", function (event) {
    var el = event.button === 1 && event.target.closest && event.target.closest("[role=option]");
    for (var i = 0; el && i < options.length; i++) {
      if (options[i].el === el && options[i].url) {
        window.open(options[i].url, "_blank", "noopener");
        return;
      }
    }
  });
  list.addEventListener("mousemove", function (event) {
    var el = event.target.closest && event.target.closest("[role=option]");
    for (var i = 0; el && i < options.length; i++) {
      if (options[i].el === el && i !== active) {
        setActive(i);
        return;
      }
    }
  });

  // A click or a tap outside, or the focus leaving the form, closes the list.
  document.addEventListener("pointerdown", function (event) {
    if (isOpen() && !form.contains(event.target)) {
      close();
    }
  });
  form.addEventListener("focusout", function (event) {
    if (!event.relatedTarget || !form.contains(event.relatedTarget)) {
      close();
    }
  });
  form.addEventListener("submit", function () {
    cancel();
    close();
  });
  window.addEventListener("resize", place);
  // Back from a document (bfcache): the page comes back as it was left, list open; close it.
  window.addEventListener("pageshow", function () {
    cancel();
    close();
  });
})();
