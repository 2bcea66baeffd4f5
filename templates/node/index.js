// Your repl's entry point. Edit it, then run `npm start` (or press Run).
console.log("Hello from Devex (node)");
