// Lanterna dashboard behaviour. No user data is ever inserted as HTML here:
// values reach the page escaped by the server, and charts read JSON via textContent.
// A part loaded later (data-load) is a fragment the server rendered, escaped the
// same way; it is parsed apart from the page and its nodes moved in.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  onReady(function () {
    // Project switcher: go to the chosen project at once.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });

    // Time range presets: show the custom from/to fields only for "custom".
    document.querySelectorAll("select[data-range]").forEach(function (sel) {
      var form = sel.form;
      function sync() {
        form.querySelectorAll(".custom-range").forEach(function (el) {
          el.style.display = sel.value === "custom" ? "" : "none";
        });
      }
      sel.addEventListener("change", sync);
      sync();
    });

    // Expand or collapse every node of a JSON tree.
    document.querySelectorAll("[data-toggle-tree]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var section = btn.closest("section");
        var nodes = section.querySelectorAll("details.j-node");
        var anyClosed = Array.prototype.some.call(nodes, function (d) { return !d.open; });
        nodes.forEach(function (d) { d.open = anyClosed; });
      });
    });

    // Copy a secret shown once.
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var target = document.getElementById(btn.getAttribute("data-copy"));
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent.trim());
          btn.textContent = "Copied";
        }
      });
    });

    // Parts read after the page has shown (the trace list's count and totals): the
    // fragment replaces its slot; on failure the slot's link stays.
    document.querySelectorAll("[data-load]").forEach(function (slot) {
      fetch(slot.getAttribute("data-load"), {
        credentials: "same-origin",
        redirect: "error",
        headers: { "Accept": "text/html" }
      }).then(function (r) {
        return r.ok || r.status === 400 ? r.text() : Promise.reject(r.status);
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var nodes = Array.prototype.slice.call(doc.body.childNodes);
        var parent = slot.parentNode;
        nodes.forEach(function (n) { parent.insertBefore(document.importNode(n, true), slot); });
        parent.removeChild(slot);
      }).catch(function () { /* the link in the slot still works */ });
    });

    // Diff version pickers submit on change.
    document.querySelectorAll("form[data-autosubmit-form] select").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
  });
})();
