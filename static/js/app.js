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
  // i13 notify: a background refresh (the header's unread count, data-background) neither
  // clears the message shown nor reports its own failures: the reader did not ask for it.
  function background(evt) {
    var elt = evt.detail && evt.detail.elt;
    return !!(elt && elt.hasAttribute && elt.hasAttribute("data-background"));
  }
  // A live poll (i13, below) reports nothing here: it backs off and tries again.
  function quiet(evt) { return !!evt.detail && !!evt.detail.elt && evt.detail.elt.id === "live-poll"; }
  document.addEventListener("htmx:responseError", function (evt) {
    if (background(evt) || quiet(evt)) return;
    var xhr = evt.detail.xhr;
    var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var text = (doc.body && doc.body.textContent || "").trim();
    var flash = document.getElementById("flash");
    say(text || (flash && flash.getAttribute("data-failed")) || String(xhr.status));
  });
  document.addEventListener("htmx:sendError", function (evt) {
    if (background(evt) || quiet(evt)) return;
    var flash = document.getElementById("flash");
    say((flash && flash.getAttribute("data-offline")) || "");
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (background(evt) || quiet(evt)) return;
    var flash = document.getElementById("flash");
    if (flash) flash.replaceChildren();
  });
})();

// i12 lists: dates. The server writes each date absolute, in UTC, inside
// <time class="when" datetime="...Z"> (so cached pages stay true and readers without
// JavaScript see the date); here it becomes relative ("3 days ago") in the page's
// language for the last month, else the date in the reader's time zone, with the exact
// local date and time as its title.
(function () {
  "use strict";
  if (!window.Intl || !Intl.RelativeTimeFormat || !Intl.DateTimeFormat) return;
  var MONTH = 30 * 86400;
  var STEPS = [["year", 365 * 86400], ["month", MONTH], ["week", 7 * 86400], ["day", 86400],
               ["hour", 3600], ["minute", 60]];
  var lang = document.documentElement.lang || undefined;
  var relative, exact, day;
  try {
    relative = new Intl.RelativeTimeFormat(lang, {numeric: "auto"});
    exact = new Intl.DateTimeFormat(lang, {dateStyle: "long", timeStyle: "short"});
    day = new Intl.DateTimeFormat(lang, {dateStyle: "medium"});
  } catch (err) {
    return;
  }
  function phrase(seconds) {
    var ago = Math.abs(seconds);
    if (ago < 45) return relative.format(0, "second");
    for (var i = 0; i < STEPS.length; i++) {
      if (ago >= STEPS[i][1]) {
        return relative.format(Math.round(seconds / STEPS[i][1]), STEPS[i][0]);
      }
    }
    return relative.format(Math.round(seconds / 60), "minute");
  }
  function render(el) {
    var at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) return;
    var seconds = (at.getTime() - Date.now()) / 1000;
    el.textContent = Math.abs(seconds) < MONTH ? phrase(seconds) : day.format(at);
    el.title = exact.format(at);
  }
  function renderAll(root) {
    var found = (root || document).querySelectorAll("time.when[datetime]");
    for (var i = 0; i < found.length; i++) render(found[i]);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { renderAll(); });
  } else {
    renderAll();
  }
  // Content htmx swaps in (comments, list pages) gets the same treatment.
  document.addEventListener("htmx:load", function (evt) { renderAll(evt.target); });
  setInterval(renderAll, 60000);
})();
// i12 votes: after an htmx vote, keep focus on the vote button (the form is swapped for a
// new one) and announce the new state in a polite live region.
(function () {
  "use strict";
  var pending = null;
  function region() {
    var box = document.getElementById("vote-status");
    if (!box && document.body) {
      box = document.createElement("div");
      box.id = "vote-status";
      box.className = "visually-hidden";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    return box;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", region);
  } else {
    region();
  }
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = evt.detail.elt;
    if (form && form.classList && form.classList.contains("vote") && form.id) {
      var button = form.querySelector("button");
      pending = {id: form.id, old: form, focused: !!button && document.activeElement === button};
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!evt.detail.successful) pending = null;  // refused or failed: nothing was swapped
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!pending) return;
    // Another htmx request (the header's unread count, a live poll) may settle while the
    // vote is in flight: wait for the vote's own swap, or the old form's text is announced.
    var form = document.getElementById(pending.id);
    if (form === pending.old) return;
    var was = pending;
    pending = null;
    if (!form) return;
    var button = form.querySelector("button");
    var lost = !document.activeElement || document.activeElement === document.body;
    if (button && (was.focused || lost)) button.focus();
    var box = region();
    var text = form.getAttribute("data-vote-status");
    if (box && text) {
      box.textContent = "";
      window.setTimeout(function () { box.textContent = text; }, 50);
    }
  });
})();

/* i13 notify: after "Mark as read" swaps the notification list, focus would fall to the
   page's start; keep keyboard readers in the list: on its summary (which also says how
   many are unread). */
(function () {
  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target || target.id !== "notification-list") return;
    var list = document.getElementById("notification-list");
    var summary = list && list.querySelector(".notifications-summary");
    var lost = !document.activeElement || document.activeElement === document.body;
    if (summary && lost) summary.focus();
  });
})();

// i13 live updates: an open idea page or roadmap has a hidden #live-poll element whose
// #live-state names its live URL and the ETag of what it shows. Every data-live-seconds (± 10%) while the
// tab is visible, it asks with If-None-Match: a 304 changes nothing; a 200 brings htmx
// pieces swapped out of band (counts, status, new comments, a polite announcement in
// #live-news), never the comment form. Failures back off (doubling, up to 5 minutes, or
// Retry-After); a 404 (the idea was deleted) stops. One request at a time, no timers
// while hidden, and focus stays where it was.
(function () {
  "use strict";
  var MAX_DELAY = 300000;
  var timer = null;
  var failures = 0;
  var stopped = false;
  var inFlight = false;
  var focusedId = null;
  function poller() { return document.getElementById("live-poll"); }
  function interval() {
    var el = poller();
    var seconds = el ? parseFloat(el.getAttribute("data-live-seconds")) : NaN;
    return (seconds > 0 ? seconds : 10) * 1000;
  }
  function schedule(ms) {
    window.clearTimeout(timer);
    timer = null;
    if (stopped || !poller()) return;
    if (ms === undefined) ms = interval() * (0.9 + Math.random() * 0.2);
    timer = window.setTimeout(tick, ms);
  }
  function state() { return document.getElementById("live-state"); }
  function shownUrl(el) {
    // After the reader's own htmx comment, ask only for comments after the last shown.
    var url = new URL(el.getAttribute("data-live-url"), window.location.href);
    if (url.searchParams.has("c")) {
      var last = parseInt(url.searchParams.get("c"), 10) || 0;
      document.querySelectorAll("#comments > article.comment[id^='comment-']").forEach(function (a) {
        var id = parseInt(a.id.slice(8), 10);
        if (id > last) last = id;
      });
      url.searchParams.set("c", String(last));
    }
    return url.pathname + url.search;
  }
  function tick() {
    timer = null;
    var el = poller();
    var now = state();
    if (!el || !now || stopped || inFlight || !window.htmx) return;
    if (document.visibilityState === "hidden") return;  // visibilitychange starts again
    inFlight = true;
    var headers = {};
    var etag = now.getAttribute("data-etag");
    if (etag) headers["If-None-Match"] = etag;
    window.htmx.ajax("GET", shownUrl(now), {source: el, target: el, swap: "none", headers: headers})
      .catch(function () {});
  }
  function isLive(evt) {
    var elt = evt.detail && evt.detail.elt;
    return !!elt && elt.id === "live-poll";
  }
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (!isLive(evt)) return;
    if (evt.detail.xhr.status !== 200) { evt.detail.shouldSwap = false; return; }
    var active = document.activeElement;
    focusedId = active && active !== document.body && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!isLive(evt)) return;
    inFlight = false;
    var xhr = evt.detail.xhr;
    var status = xhr ? xhr.status : 0;
    if (status === 200 || status === 304) {
      failures = 0;
      schedule();
    } else if (status === 404 || status === 410 || status === 400) {
      stopped = true;
    } else {
      failures += 1;
      var wait = Math.min(interval() * Math.pow(2, failures), MAX_DELAY);
      var retry = xhr && parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
      if (retry > 0) wait = Math.max(wait, retry * 1000);
      schedule(wait);
    }
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (!isLive(evt)) return;
    // A comment both posted here by htmx and brought by a poll in between: keep one.
    var seen = {};
    document.querySelectorAll("#comments > article[id]").forEach(function (a) {
      if (seen[a.id]) a.remove(); else seen[a.id] = true;
    });
    if (focusedId && (!document.activeElement || document.activeElement === document.body)) {
      var again = document.getElementById(focusedId);
      if (again) again.focus({preventScroll: true});
    }
    focusedId = null;
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !timer && !inFlight) schedule(500);
  });
  function start() { if (poller()) schedule(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
