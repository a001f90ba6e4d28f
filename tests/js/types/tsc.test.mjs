// The .d.ts against the JS it describes, with the TypeScript compiler API (`npm ci` installs it):
// - every file in fail/ must fail to compile, with the error its first line names (so the check
//   `tsc -p tests/js/types` can fail at all, and fails for the reason meant);
// - the names the .d.ts exports, the members it declares on NotifyClient and NotifyError, and the
//   options it accepts are exactly the ones notify-kit.js has.
// usage.ts itself compiles with `npx tsc -p tests/js/types` (tox env `js`).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import ts from "typescript";

import * as client from "../../../notify_kit/static/notify_kit/notify-kit.js";

const here = dirname(fileURLToPath(import.meta.url));
const clientDir = join(here, "../../../notify_kit/static/notify_kit");
const config = ts.getParsedCommandLineOfConfigFile(join(here, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });

function diagnostics(file) {
  const program = ts.createProgram([file], config.options);
  return ts.getPreEmitDiagnostics(program).map((d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

for (const name of readdirSync(join(here, "fail")).filter((f) => f.endsWith(".ts"))) {
  test(`fail/${name} does not compile`, () => {
    const file = join(here, "fail", name);
    const expected = /\((TS\d+)\)/.exec(readFileSync(file, "utf8").split("\n")[0])?.[1];
    assert.ok(expected, `the first line of fail/${name} must name the expected error, e.g. "(TS2345)"`);
    const errors = diagnostics(file);
    assert.ok(errors.length > 0, `fail/${name} compiled; the .d.ts no longer rejects it`);
    assert.ok(errors.every((e) => e.startsWith(`${expected}:`)), `expected only ${expected}, got:\n${errors.join("\n")}`);
  });
}

test("usage.ts compiles", () => {
  assert.deepEqual(diagnostics(join(here, "usage.ts")), []);
});

/** The checker's view of notify-kit.d.ts. */
function declarations() {
  const file = join(clientDir, "notify-kit.d.ts");
  const program = ts.createProgram([file], config.options);
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file));
  const exports = checker.getExportsOfModule(module);
  const instanceMembers = (name) => {
    const symbol = exports.find((s) => s.name === name);
    // Own declarations only: Error's `message` and `stack` come from the base class.
    return symbol.members ? [...symbol.members.keys()].filter((k) => k !== "__constructor").sort() : [];
  };
  const options = checker.getDeclaredTypeOfSymbol(exports.find((s) => s.name === "NotifyOptions"));
  return {
    // `export default connect` is an alias of a value.
    values: exports
      .filter((s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags & ts.SymbolFlags.Value)
      .map((s) => s.name)
      .sort(),
    instanceMembers,
    options: checker.getPropertiesOfType(options).map((p) => p.name).sort(),
  };
}

test("the .d.ts exports the values the JS exports", () => {
  assert.deepEqual(declarations().values, Object.keys(client).sort());
});

test("NotifyClient: the .d.ts declares the public members the JS class has", () => {
  const proto = Object.getOwnPropertyNames(client.NotifyClient.prototype).filter((k) => k !== "constructor");
  assert.deepEqual(declarations().instanceMembers("NotifyClient"), proto.sort());
});

test("NotifyError: the .d.ts declares the fields a NotifyError has", () => {
  const error = new client.NotifyError("timeout", "detail", { model: "m", id: "i", frame: {} });
  assert.deepEqual(declarations().instanceMembers("NotifyError"), Object.keys(error).sort());
});

test("NotifyOptions: the .d.ts declares the options the JS reads", () => {
  // Every `options.X`, `options?.X`, `this.#options.X` and `{ ... } = this.#options` in the source.
  const source = ts.createSourceFile("notify-kit.js", readFileSync(join(clientDir, "notify-kit.js"), "utf8"), ts.ScriptTarget.Latest);
  const read = new Set();
  const isOptions = (node) => (ts.isIdentifier(node) && node.text === "options") || (ts.isPropertyAccessExpression(node) && node.name.getText(source) === "#options");
  const visit = (node) => {
    if (ts.isPropertyAccessExpression(node) && isOptions(node.expression)) read.add(node.name.getText(source));
    if (ts.isVariableDeclaration(node) && node.initializer && isOptions(node.initializer) && ts.isObjectBindingPattern(node.name)) {
      for (const element of node.name.elements) read.add(element.name.getText(source));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  read.delete("#options");
  assert.deepEqual(declarations().options, [...read].sort());
});
