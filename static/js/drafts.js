/* Postmortem Wiki — editor drafts kept in this browser.
 *
 * A draft is {savedAt, base, title, fields: [[name, value], …]} under a key
 * "wiki-draft:<document id or new-kind>:<revision the edit started from>". It lives in
 * localStorage, or in IndexedDB when it is too big for localStorage's few megabytes (a pasted
 * log), so that nothing typed is lost to a closed tab, a crash or a rejected save.
 *
 *   WikiDrafts.save(key, draft)   → Promise<"local" | "indexeddb">
 *   WikiDrafts.load(key)          → Promise<draft | null>
 *   WikiDrafts.remove(key)        → Promise
 *   WikiDrafts.list(prefix)       → Promise<[{key, draft}]>
 *   WikiDrafts.ready              → Promise, settled once saved drafts are forgotten
 *
 * After a successful save the server flashes the draft's key; the page shows it as
 * <span data-clear-draft="key">, and this script forgets that draft.
 */
(function () {
  "use strict";

  var DB_NAME = "postmortem-wiki";
  var STORE = "drafts";
  var inIndexedDb = {};

  function local() {
    try {
      return window.localStorage;
    } catch (e) {
      return null; // storage disabled
    }
  }

  function openDb() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) {
        reject(new Error("IndexedDB is not available"));
        return;
      }
      var request = window.indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE);
      };
      request.onsuccess = function () {
        resolve(request.result);
      };
      request.onerror = function () {
        reject(request.error);
      };
    });
  }

  function withStore(mode, operation) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var request = operation(tx.objectStore(STORE));
        var result;
        if (request) {
          request.onsuccess = function () {
            result = request.result;
          };
        }
        tx.oncomplete = function () {
          db.close();
          resolve(result);
        };
        tx.onerror = tx.onabort = function () {
          db.close();
          reject(tx.error);
        };
      });
    });
  }

  function save(key, draft) {
    var storage = local();
    try {
      if (!storage) throw new Error("no localStorage");
      storage.setItem(key, JSON.stringify(draft));
      if (inIndexedDb[key]) {
        delete inIndexedDb[key];
        withStore("readwrite", function (s) { return s.delete(key); }).catch(function () {});
      }
      return Promise.resolve("local");
    } catch (e) {
      // Over the quota (or no localStorage): keep it in IndexedDB, which holds far more.
      try {
        if (storage) storage.removeItem(key);
      } catch (ignored) { /* nothing to remove */ }
      inIndexedDb[key] = true;
      return withStore("readwrite", function (s) { return s.put(draft, key); }).then(function () {
        return "indexeddb";
      });
    }
  }

  function load(key) {
    var storage = local();
    var text = null;
    try {
      text = storage ? storage.getItem(key) : null;
    } catch (e) {
      text = null;
    }
    if (text) {
      try {
        return Promise.resolve(JSON.parse(text));
      } catch (e) {
        return Promise.resolve(null);
      }
    }
    return withStore("readonly", function (s) { return s.get(key); }).then(function (draft) {
      if (draft) inIndexedDb[key] = true;
      return draft || null;
    }).catch(function () { return null; });
  }

  function remove(key) {
    var storage = local();
    try {
      if (storage) storage.removeItem(key);
    } catch (e) { /* ignore */ }
    delete inIndexedDb[key];
    return withStore("readwrite", function (s) { return s.delete(key); }).catch(function () {});
  }

  function list(prefix) {
    var out = [];
    var seen = {};
    var storage = local();
    try {
      for (var i = 0; storage && i < storage.length; i++) {
        var key = storage.key(i);
        if (key && key.indexOf(prefix) === 0) {
          try {
            out.push({ key: key, draft: JSON.parse(storage.getItem(key)) });
            seen[key] = true;
          } catch (e) { /* not ours */ }
        }
      }
    } catch (e) { /* storage disabled */ }
    return withStore("readonly", function (s) { return s.getAllKeys(); }).then(function (keys) {
      var wanted = (keys || []).filter(function (k) {
        return typeof k === "string" && k.indexOf(prefix) === 0 && !seen[k];
      });
      return Promise.all(wanted.map(function (k) {
        return load(k).then(function (draft) {
          if (draft) out.push({ key: k, draft: draft });
        });
      }));
    }).catch(function () {}).then(function () {
      return out;
    });
  }

  function forgetSaved() {
    var marks = document.querySelectorAll("[data-clear-draft]");
    return Promise.all(Array.prototype.map.call(marks, function (el) {
      return remove(el.getAttribute("data-clear-draft"));
    }));
  }

  var ready = new Promise(function (resolve) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () { forgetSaved().then(resolve); });
    } else {
      forgetSaved().then(resolve);
    }
  });

  window.WikiDrafts = { save: save, load: load, remove: remove, list: list, ready: ready };
})();
