// "Copy link" on document pages: copy the short link (the button's href) to the clipboard.
// Without JavaScript, or where the clipboard API is missing, the button stays a plain link to it.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-copy-link]");
    if (!link || !navigator.clipboard || !window.isSecureContext) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    var status = link.parentNode.querySelector("[data-copy-link-status]");
    var label = link.textContent;
    navigator.clipboard.writeText(link.href).then(function () {
      link.textContent = "Copied";
      if (status) status.textContent = "Link copied: " + link.href;
      setTimeout(function () { link.textContent = label; }, 2000);
    }, function () {
      window.prompt("Copy this link:", link.href);
    });
  });
})();
