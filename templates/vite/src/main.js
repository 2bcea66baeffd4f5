// Your site's script. Vite serves it as an ES module and reloads the page when it changes.
const button = document.querySelector("#counter");
let clicks = 0;
button.addEventListener("click", () => {
  clicks += 1;
  button.textContent = `Clicked ${clicks} time${clicks === 1 ? "" : "s"}`;
});
