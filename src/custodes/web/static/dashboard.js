// The auditor dashboard: small conveniences on top of pages that work without scripts.
// - "Find" narrows the alert cards to those whose accessor or finding kinds contain the text.
// - An acknowledgement's button stays disabled until its note holds some text.

function quickFilter() {
  const box = document.getElementById("quick-filter");
  if (!box) return;
  const cards = Array.from(document.querySelectorAll("article.alert"));
  box.addEventListener("input", () => {
    const needle = box.value.trim().toLowerCase();
    for (const card of cards) {
      const hay = `${card.dataset.accessor} ${card.dataset.kinds}`.toLowerCase().replaceAll("_", " ");
      card.classList.toggle("hidden-by-filter", needle !== "" && !hay.includes(needle));
    }
    for (const group of document.querySelectorAll("section.severity-group")) {
      const visible = group.querySelectorAll("article.alert:not(.hidden-by-filter)").length;
      group.classList.toggle("hidden-by-filter", visible === 0);
    }
  });
}

function noteRequired() {
  for (const form of document.querySelectorAll("form[data-ack]")) {
    const note = form.querySelector("textarea");
    const button = form.querySelector("button");
    const update = () => { button.disabled = note.value.trim() === ""; };
    note.addEventListener("input", update);
    update();
  }
}

quickFilter();
noteRequired();
