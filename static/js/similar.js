/* Postmortem Wiki — "Similar incidents" while writing (issue 6).
 *
 * In the editor, the panel (#similar-panel, wiki/templates/similar/_panel.html) follows the draft:
 * when the text, the title, the timeline, the services or the tags change, it waits a moment
 * (debounced), POSTs the editor form to /similar/draft and puts the fragment it gets back in
 * place of the panel. Only the latest answer is shown.
 *
 * "Link" and "Not related" in the editor (buttons: the panel sits inside the editor's form, so it
 * has no forms of its own) write the suggested document only (both=0): "Link" also
 * adds the id to this form's "Related documents" field, so it is saved with the author's next
 * save and the editor's revision never goes stale under them. On a document page the panel's
 * forms are ordinary forms and need no script.
 *
 * Needs #editor-form; uses window.WikiEditor (onBodyChange, csrfToken) when it exists.
 * POSTs send X-CSRFToken from <meta name="csrf-token"> or the form's token. Plain JS, no build.
 */
(function () {
  "use strict";

  var form = document.getElementById("editor-form");
  var panel = document.getElementById("similar-panel");
  if (!form || !panel || !window.fetch || !window.FormData) {
    return;
  }
  var endpoint = panel.getAttribute("data-draft-url") || "/similar/draft";
  var DELAY = 800;
  var timer = null;
  var sequence = 0;
  var lastSent = null;

  function draftData() {
    var data = new FormData(form);
    data.delete("action");
    data.set("doc_id", form.getAttribute("data-doc-id") || "");
    if (window.WikiEditor && typeof window.WikiEditor.getBody === "function") {
      data.set("body", window.WikiEditor.getBody());
    }
    return data;
  }

  function fingerprint(data) {
    var keep = ["title", "body", "services", "tags", "customer_impact", "trigger", "related",
                "signatures"];
    var parts = [];
    data.forEach(function (value, key) {
      if (keep.indexOf(key) !== -1 || key.indexOf("tl_") === 0 || key === "pat_value" ||
          key === "example") {
        parts.push(key + "=" + value);
      }
    });
    return parts.join("\u0000");
  }

  function refresh() {
    var data = draftData();
    var print = fingerprint(data);
    if (print === lastSent) {
      return;
    }
    lastSent = print;
    var mine = ++sequence;
    panel.classList.add("is-loading");
    fetch(endpoint, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": window.wikiCsrfToken(), "Accept": "text/html" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.text();
    }).then(function (html) {
      if (mine !== sequence) {
        return; // an older answer: a newer request is on its way
      }
      replace(html);
    }).catch(function () {
      if (mine === sequence) {
        panel.classList.remove("is-loading");
        lastSent = null; // try again on the next change
      }
    });
  }

  function replace(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var fresh = holder.querySelector("#similar-panel");
    if (!fresh) {
      panel.classList.remove("is-loading");
      return;
    }
    panel.parentNode.replaceChild(fresh, panel);
    panel = fresh;
  }

  function schedule() {
    if (timer) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(refresh, DELAY);
  }

  /* -------------------------------------------------------------- link / not related */
  function addRelated(ident) {
    var field = form.elements.related;
    if (!field) {
      return;
    }
    var values = String(field.value || "").split(/[,\n]/).map(function (v) {
      return v.trim();
    }).filter(Boolean);
    if (values.map(function (v) { return v.toUpperCase(); }).indexOf(ident.toUpperCase()) === -1) {
      values.push(ident);
      field.value = values.join(", ");
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function say(item, text, isError) {
    var note = document.createElement("p");
    note.className = "similar__note" + (isError ? " field__error" : " muted");
    note.setAttribute("role", isError ? "alert" : "status");
    note.textContent = text;
    item.appendChild(note);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.similar__button[data-url]");
    if (!button || !panel.contains(button)) {
      return;
    }
    event.preventDefault();
    var action = button.getAttribute("data-action");
    var item = button.closest(".similar__item");
    var data = new FormData();
    data.set("target", button.getAttribute("data-target"));
    data.set("both", "0");
    data.set("csrf_token", window.wikiCsrfToken());
    Array.prototype.forEach.call(item.querySelectorAll("button"), function (b) {
      b.disabled = true;
    });
    fetch(button.getAttribute("data-url"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": window.wikiCsrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          throw new Error(body.error || ("HTTP " + response.status));
        }
        return body;
      });
    }).then(function (body) {
      if (action === "link") {
        addRelated(body.target);
        say(item, "Linked: " + body.target + " now lists this document, and it is in "
          + "“Related documents” here, saved with your next save.");
      } else {
        item.hidden = true;
        lastSent = null;
        schedule();
      }
    }).catch(function (error) {
      Array.prototype.forEach.call(item.querySelectorAll("button"), function (b) {
        b.disabled = false;
      });
      say(item, "Not saved: " + error.message, true);
    });
  });

  /* -------------------------------------------------------------- follow the draft */
  if (window.WikiEditor && typeof window.WikiEditor.onBodyChange === "function") {
    window.WikiEditor.onBodyChange(schedule);
  }
  form.addEventListener("input", function (event) {
    var name = event.target && event.target.name;
    if (!name || name === "message" || name === "author") {
      return;
    }
    schedule();
  });
  form.addEventListener("change", schedule);
  schedule();
})();
