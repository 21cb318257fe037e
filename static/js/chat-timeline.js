/* Timeline from chat (issue 4, item 9).
 *
 * Adds a "Timeline from chat…" button to #editor-tools. It opens a dialog: paste a Slack
 * export (JSON) or chat lines, parse them with /api/v1/timeline/parse, tick the lines that
 * matter (shift-click ticks a range) and add them as timeline rows through
 * WikiEditor.addTimelineRow(time, "author: text"). Without WikiEditor the lines go into #body
 * as a Markdown table at the cursor. Without JavaScript, /tools/timeline does the same job.
 * Plain JS, no build step.
 */
(function () {
  "use strict";

  var tools = document.getElementById("editor-tools");
  // Only where there is a timeline to fill (postmortems, not signatures).
  if (!tools || !window.fetch || !document.getElementById("timeline-rows")) {
    return;
  }
  var endpoint = tools.getAttribute("data-timeline-url") || "/api/v1/timeline/parse";
  var lines = [];
  var lastClicked = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attrs[key];
      } else if (key === "className") {
        node.className = attrs[key];
      } else {
        node.setAttribute(key, attrs[key]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  /* The day and zone to assume: from the form's incident start if it has one. */
  function defaultDay() {
    var field = document.querySelector('[name="started_at"], [name="date"]');
    var value = field ? String(field.value || "") : "";
    return /^\d{4}-\d{2}-\d{2}/.test(value) ? value.slice(0, 10) : "";
  }

  function defaultZone() {
    /* The timeline's own zone, from its header ("Time (UTC+02:00)"), else the incident's. */
    var header = document.querySelector('[name="tl_header_time"]');
    var named = header && /\((UTC[^)]*|GMT[^)]*|[A-Za-z_]+\/[A-Za-z_\/+-]+)\)/.exec(header.value || "");
    if (named) {
      return named[1].replace(/\s+/g, "");
    }
    var start = document.querySelector('[name="started_at"]');
    var zone = document.querySelector('[name="started_at_tz"]');
    if (start && start.value && zone && zone.value) {
      return zone.value; /* the postmortem's own offset, e.g. +02:00 */
    }
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  // ------------------------------------------------------------------ the dialog
  var opener = el("button", { type: "button", className: "tools-button",
    text: "Timeline from chat…", "aria-haspopup": "dialog" });
  tools.appendChild(opener);

  var textarea = el("textarea", { id: "chat-timeline-text", rows: "8", spellcheck: "false",
    placeholder: "14:02 alice: restarted the pods\n…or paste a Slack export (JSON)" });
  var dayInput = el("input", { type: "date", id: "chat-timeline-day" });
  var zoneInput = el("input", { type: "text", id: "chat-timeline-tz", size: "16",
    placeholder: "UTC or Europe/Berlin" });
  var parseButton = el("button", { type: "button", className: "tools-button", text: "Find lines" });
  var status = el("p", { className: "tools-status", role: "status", "aria-live": "polite" });
  var list = el("ul", { className: "chat-lines", hidden: "" });
  var allButton = el("button", { type: "button", className: "tools-button", text: "Select all" });
  var noneButton = el("button", { type: "button", className: "tools-button", text: "Select none" });
  var addButton = el("button", { type: "button", className: "tools-button tools-button--primary",
    text: "Add selected to timeline", disabled: "" });
  var closeButton = el("button", { type: "button", className: "tools-button", text: "Close" });

  var dialog = el("dialog", { className: "tools-dialog", "aria-labelledby": "chat-timeline-title" }, [
    el("div", { className: "tools-dialog__inner" }, [
      el("div", { className: "tools-dialog__head" }, [
        el("h2", { id: "chat-timeline-title", text: "Timeline from chat" }),
        closeButton
      ]),
      el("label", { "for": "chat-timeline-text",
        text: "Paste a chat transcript or a Slack channel export (JSON)" }),
      textarea,
      el("div", { className: "tools-row" }, [
        el("label", {}, [document.createTextNode("Day of times without a date"), dayInput]),
        el("label", {}, [document.createTextNode("Time zone"), zoneInput]),
        parseButton
      ]),
      status,
      list,
      el("div", { className: "tools-row" }, [
        allButton, noneButton, el("span", { className: "tools-row__spacer" }), addButton
      ])
    ])
  ]);
  document.body.appendChild(dialog);

  function open() {
    if (!dayInput.value) {
      dayInput.value = defaultDay();
    }
    if (!zoneInput.value) {
      zoneInput.value = defaultZone();
    }
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    textarea.focus();
  }

  function close() {
    if (typeof dialog.close === "function") {
      dialog.close();
    } else {
      dialog.removeAttribute("open");
    }
    opener.focus();
  }

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("tools-status--error", !!isError);
  }

  // ------------------------------------------------------------------ parsing
  function parse() {
    var text = textarea.value;
    if (!text.trim()) {
      say("Paste a transcript first.", true);
      return;
    }
    parseButton.disabled = true;
    say("Reading the transcript…");
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": window.wikiCsrfToken()
      },
      body: JSON.stringify({ text: text, day: dayInput.value || null, tz: zoneInput.value || null })
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { error: "The server answered " + response.status + "." };
        }).then(function (data) {
          if (!response.ok) {
            throw new Error(data && data.error ? data.error : "The server answered " + response.status + ".");
          }
          return data;
        });
      })
      .then(function (data) {
        show(data.lines || []);
      })
      .catch(function (error) {
        show([]);
        say(error.message || "Could not read the transcript.", true);
      })
      .then(function () {
        parseButton.disabled = false;
      });
  }

  function show(found) {
    lines = found;
    lastClicked = null;
    list.textContent = "";
    list.hidden = !lines.length;
    lines.forEach(function (line, index) {
      var box = el("input", { type: "checkbox", "data-index": String(index) });
      var text = el("span", { className: "chat-lines__text" });
      if (line.author) {
        text.appendChild(el("span", { className: "chat-lines__author", text: line.author + ": " }));
      }
      text.appendChild(document.createTextNode(line.text));
      var time = el("span", { className: "chat-lines__time", text: line.display_time || "—" });
      if (line.time) {
        time.title = line.time;
      }
      var item = el("li", line.in_thread ? { className: "is-thread-reply" } : {}, [
        el("label", {}, [box, time, text])
      ]);
      list.appendChild(item);
    });
    say(lines.length
      ? lines.length + (lines.length === 1 ? " line" : " lines") +
        " found. Tick the ones for the timeline (shift-click ticks a range)."
      : "No chat lines found.");
    updateAdd();
  }

  function boxes() {
    return Array.prototype.slice.call(list.querySelectorAll('input[type="checkbox"]'));
  }

  function updateAdd() {
    var count = boxes().filter(function (box) {
      return box.checked;
    }).length;
    addButton.disabled = count === 0;
    addButton.textContent = count ? "Add " + count + " to timeline" : "Add selected to timeline";
  }

  /* A click on a label reaches its checkbox as a second, synthetic click that may not carry
     the shift key: remember it from the first. */
  var shiftFromLabel = false;
  list.addEventListener("click", function (event) {
    var box = event.target;
    if (!box || box.type !== "checkbox") {
      shiftFromLabel = event.shiftKey;
      return;
    }
    var shift = event.shiftKey || shiftFromLabel;
    shiftFromLabel = false;
    var index = Number(box.getAttribute("data-index"));
    if (shift && lastClicked !== null && lastClicked !== index) {
      var all = boxes();
      var from = Math.min(lastClicked, index);
      var to = Math.max(lastClicked, index);
      for (var n = from; n <= to; n++) {
        all[n].checked = box.checked;
      }
    }
    lastClicked = index;
    updateAdd();
  });

  function setAll(checked) {
    boxes().forEach(function (box) {
      box.checked = checked;
    });
    updateAdd();
  }

  // ------------------------------------------------------------------ adding
  function oneLine(text) {
    return String(text || "").replace(/\s+/g, " ").trim();
  }

  function cell(text) {
    return oneLine(text).replace(/\\/g, "\\\\").replace(/\|/g, "\\|");
  }

  function insertIntoBody(text) {
    var editor = window.WikiEditor;
    if (editor && typeof editor.insertAtCursor === "function") {
      editor.insertAtCursor(text);
      return true;
    }
    var body = document.getElementById("body");
    if (!body) {
      return false;
    }
    var start = body.selectionStart || 0;
    var end = body.selectionEnd || start;
    body.value = body.value.slice(0, start) + text + body.value.slice(end);
    body.selectionStart = body.selectionEnd = start + text.length;
    body.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  /* "14:02", or "2023-06-14 14:02" when the lines span several days or the timeline's rows
     already carry dates. */
  function wantsDates(chosen) {
    var days = {};
    chosen.forEach(function (line) {
      if (line.date) {
        days[line.date] = true;
      }
    });
    if (Object.keys(days).length > 1) {
      return true;
    }
    var times = document.querySelectorAll('#timeline-rows [name="tl_time"]');
    return Array.prototype.some.call(times, function (input) {
      return /^\d{4}-\d{2}-\d{2}/.test(input.value || "");
    });
  }

  function timeOf(line, dated) {
    if (!line.display_time) {
      return "";
    }
    return dated && line.date ? line.date + " " + line.display_time : line.display_time;
  }

  function add() {
    var chosen = boxes().filter(function (box) {
      return box.checked;
    }).map(function (box) {
      return lines[Number(box.getAttribute("data-index"))];
    });
    if (!chosen.length) {
      return;
    }
    var editor = window.WikiEditor;
    var dated = wantsDates(chosen);
    if (editor && typeof editor.addTimelineRow === "function") {
      chosen.forEach(function (line) {
        var event = line.author ? line.author + ": " + oneLine(line.text) : oneLine(line.text);
        editor.addTimelineRow(timeOf(line, dated), event);
      });
    } else {
      var table = "\n| Time | Event |\n|---|---|\n" + chosen.map(function (line) {
        var event = line.author ? line.author + ": " + line.text : line.text;
        return "| " + cell(timeOf(line, dated)) + " | " + cell(event) + " |";
      }).join("\n") + "\n";
      if (!insertIntoBody(table)) {
        say("There is no timeline or text box on this page to add the lines to.", true);
        return;
      }
    }
    say("Added " + chosen.length + (chosen.length === 1 ? " line" : " lines") + " to the timeline.");
    setAll(false);
    close();
  }

  opener.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  parseButton.addEventListener("click", parse);
  allButton.addEventListener("click", function () {
    setAll(true);
  });
  noneButton.addEventListener("click", function () {
    setAll(false);
  });
  addButton.addEventListener("click", add);
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      parse();
    }
  });
})();
