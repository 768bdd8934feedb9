// Tidegate Bridge: small progressive enhancements. Every page works without this file.
// - live updates: the server sends "changed" over server-sent events; the page fetches itself again
//   and swaps the regions marked data-live-region (forms being filled in stay as they are);
// - confirmation for destructive buttons (data-confirm);
// - the trigger form shows only the fields of the chosen kind.
(function () {
  "use strict";

  function confirmButtons(root) {
    root.querySelectorAll("button[data-confirm]").forEach(function (button) {
      if (button.dataset.confirmBound) return;
      button.dataset.confirmBound = "1";
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function triggerForm() {
    var form = document.querySelector("[data-trigger-form]");
    if (!form) return;
    var stage = form.querySelector("select[name=stage]");
    var sequence = form.querySelector("select[name=sequence]");
    function kind() {
      var checked = form.querySelector("input[name=kind]:checked");
      return checked ? checked.value : "delivery";
    }
    function update() {
      var chosen = kind();
      form.querySelectorAll("[data-kinds]").forEach(function (row) {
        row.hidden = row.dataset.kinds.split(" ").indexOf(chosen) < 0;
      });
      // Offer only the sequences of the chosen stage; prefer "delivery" for a delivery.
      if (sequence && stage) {
        var firstVisible = null, selectedVisible = false;
        sequence.querySelectorAll("option").forEach(function (option) {
          var visible = option.dataset.stage === stage.value;
          option.hidden = !visible;
          option.disabled = !visible;
          if (visible && !firstVisible) firstVisible = option;
          if (visible && option.selected) selectedVisible = true;
          if (visible && chosen === "delivery" && option.value === "delivery") { option.selected = true; selectedVisible = true; }
        });
        if (!selectedVisible && firstVisible) firstVisible.selected = true;
      }
    }
    form.addEventListener("change", update);
    update();
  }

  function keepOpenDetails(oldRegion, newRegion) {
    oldRegion.querySelectorAll("details[open][id]").forEach(function (details) {
      var fresh = newRegion.querySelector("#" + CSS.escape(details.id));
      if (fresh) fresh.open = true;
    });
  }

  function live() {
    var body = document.body;
    var url = body.dataset.liveUrl;
    var status = document.querySelector("[data-live-status]");
    if (!url || !window.EventSource || !window.fetch) {
      if (status) status.textContent = "Live updates are off: reload the page to see changes.";
      return;
    }
    var pageVersion = body.dataset.liveVersion || "";
    var refreshing = false, again = false, leaving = false, stale = false;

    function typing(region) {
      var active = document.activeElement;
      return !!active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    }
    // A region left stale while someone typed is refreshed once they leave the field.
    document.addEventListener("focusout", function () { if (stale) { stale = false; setTimeout(refresh, 0); } });

    function say(text) { if (status) status.textContent = text; }

    function refresh() {
      if (leaving) return;
      if (refreshing) { again = true; return; }
      refreshing = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Bridge-Live": "1" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live-region]").forEach(function (region) {
            var replacement = fresh.getElementById(region.id);
            if (!replacement || replacement.innerHTML === region.innerHTML) return;
            if (typing(region)) { stale = true; return; }  // never wipe what a person is typing
            keepOpenDetails(region, replacement);
            region.replaceWith(replacement);
            confirmButtons(replacement);
          });
          var newVersion = fresh.body.dataset.liveVersion;
          if (newVersion) pageVersion = newVersion;
          document.body.dataset.liveVersion = pageVersion;
          say("Live · updated " + new Date().toLocaleTimeString());
        })
        .catch(function (error) { say("Live update failed (" + error.message + "); retrying on the next change"); })
        .finally(function () {
          refreshing = false;
          if (again) { again = false; refresh(); }
        });
    }

    var source = new EventSource(url, { withCredentials: true });
    source.addEventListener("open", function () { say("Live"); });
    source.addEventListener("version", function (event) {
      if (event.data !== pageVersion) refresh();
      say("Live");
    });
    source.addEventListener("changed", function (event) {
      if (event.data !== pageVersion) refresh();
    });
    source.addEventListener("error", function () { say("Live updates reconnecting…"); });
    // Leaving the page (a form was sent, a link followed): stop listening, refresh nothing more.
    function leave() { leaving = true; source.close(); }
    window.addEventListener("pagehide", leave);
    document.addEventListener("submit", function (event) { if (!event.defaultPrevented) leave(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmButtons(document);
    triggerForm();
    live();
  });
})();
