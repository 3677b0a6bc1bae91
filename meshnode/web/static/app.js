// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!("geolocation" in navigator)) { return; }
  document.querySelectorAll("button.js-only").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude.toFixed(4), lon = pos.coords.longitude.toFixed(4);
        if (button.dataset.locate) {
          document.getElementById(button.dataset.locate).value = lat + "," + lon;
        } else {
          document.getElementById(button.dataset.locateLat).value = lat;
          document.getElementById(button.dataset.locateLon).value = lon;
        }
      });
    });
  });
});
