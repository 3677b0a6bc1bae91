// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!("geolocation" in navigator)) { return; }
  document.querySelectorAll("button.js-only").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude.toFixed(4), lon = pos.coords.longitude.toFixed(4);
        var target = button.dataset.locate && document.getElementById(button.dataset.locate);
        if (target && target.tagName === "SELECT") {
          // "Near me" on the search form: one "My position" choice, selected.
          var mine = target.querySelector("option[data-position]") || document.createElement("option");
          mine.setAttribute("data-position", "");
          mine.value = lat + "," + lon;
          mine.textContent = button.dataset.positionLabel;
          if (!mine.parentNode) { target.insertBefore(mine, target.options[1] || null); }
          target.value = mine.value;
        } else if (target) {
          target.value = lat + "," + lon;
        } else {
          document.getElementById(button.dataset.locateLat).value = lat;
          document.getElementById(button.dataset.locateLon).value = lon;
        }
      });
    });
  });
});
