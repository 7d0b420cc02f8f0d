// Berth's web UI: the little that needs a script. Pages work without it.
// Copy buttons: <button class="copy" data-copy="ELEMENT-ID"> copies that element's text.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button || !navigator.clipboard) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    button.classList.add("copied");
    setTimeout(function () { button.classList.remove("copied"); }, 1500);
  });
});
// Destructive actions: a form or the button that sent it with data-confirm="question" asks
// before sending.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = (button && button.getAttribute("data-confirm")) ||
    (event.target.getAttribute && event.target.getAttribute("data-confirm"));
  if (question && !window.confirm(question)) event.preventDefault();
});
// Enter in a field with data-enter="BUTTON-ID" presses that button (the form's own default
// changes nothing).
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || !event.target.getAttribute) return;
  var id = event.target.getAttribute("data-enter");
  var button = id && document.getElementById(id);
  if (!button) return;
  event.preventDefault();
  button.click();
});
