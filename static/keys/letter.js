// Print button of the activation letter (an external file: the CSP forbids inline script).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-letter");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
});
