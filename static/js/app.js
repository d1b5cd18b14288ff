// Ideaboard's only script besides htmx. Pages work without it; it just reports htmx
// errors in the page's status region instead of failing silently.
(function () {
  "use strict";
  function say(text) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    var box = document.createElement("div");
    box.className = "alert alert-error";
    box.setAttribute("role", "alert");
    box.textContent = text;
    flash.replaceChildren(box);
  }
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var text = (doc.body && doc.body.textContent || "").trim();
    var flash = document.getElementById("flash");
    say(text || (flash && flash.getAttribute("data-failed")) || String(xhr.status));
  });
  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    say((flash && flash.getAttribute("data-offline")) || "");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var flash = document.getElementById("flash");
    if (flash) flash.replaceChildren();
  });
})();
