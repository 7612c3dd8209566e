/* Add seats: the cost line follows the service and the count chosen (the page states it for the first service and
   one seat without this script). A file of its own: the Content-Security-Policy allows no inline script. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-add-seats]");
  if (!form) { return; }
  // each service's price, from the rows of the price table (no inline script or JSON: the CSP)
  var prices = {};
  document.querySelectorAll("tr[data-offer]").forEach(function (row) {
    prices[row.dataset.offer] = {price: row.dataset.price, places: parseInt(row.dataset.places, 10),
                                 prefix: row.dataset.prefix, shown: row.dataset.shown, effective: row.dataset.effective};
  });
  var service = form.querySelector("#id_service");
  var seats = form.querySelector("#id_seats");
  var line = form.querySelector("[data-cost]");
  if (!service || !seats || !line) { return; }

  // the amount in the currency's minor unit, from the exact price (up to 4 places): no float rounding
  function minorUnits(price, count, places) {
    var parts = price.split(".");
    var frac = (parts[1] || "").padEnd(4, "0").slice(0, 4);
    var tenThousandths = BigInt(parts[0] + frac) * BigInt(count);
    var divisor = BigInt(10 ** (4 - places));
    var units = tenThousandths / divisor;
    if ((tenThousandths % divisor) * 2n >= divisor) { units += 1n; } // half away from zero (a price is never negative)
    return units;
  }

  function grouped(units, places) {
    var text = units.toString().padStart(places + 1, "0");
    var whole = places ? text.slice(0, -places) : text;
    var frac = places ? "." + text.slice(-places) : "";
    return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
  }

  function update() {
    var offer = prices[service.value];
    var count = parseInt(seats.value, 10);
    if (!offer || !(count > 0)) { line.hidden = true; return; }
    line.hidden = false;
    line.querySelector("[data-cost-effective]").textContent = offer.effective;
    line.querySelector("[data-cost-seats]").textContent = String(count);
    line.querySelector("[data-cost-plural]").textContent = count === 1 ? "" : "s";
    line.querySelector("[data-cost-price]").textContent = offer.shown;
    line.querySelector("[data-cost-amount]").textContent = offer.prefix + grouped(minorUnits(offer.price, count, offer.places), offer.places);
  }

  service.addEventListener("change", update);
  seats.addEventListener("input", update);
  update();
}());
