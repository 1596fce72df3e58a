// A JavaScript kernel for the `run_code` tool: cells run one after another in one global scope.
//
// The tool agent (tools/code.py) starts it with `node --expose-internals kernel.js [--typescript=DIR]
// CONTROL_FD OUTPUT_LIMIT STDOUT_FD STDERR_FD` on the first javascript (or typescript) cell of a
// session and keeps it, so variables, required modules and the working directory persist, as in a
// notebook. It speaks kernel.py's protocol: one JSON line per cell on the socket CONTROL_FD,
// `{"started": true}` at once, then one JSON line with the cell's outcome. Node's own modules only
// (and, for TypeScript, the TypeScript module it is given); Node 18 or newer.
//
// Cells are scripts run in this process's global scope (vm's runInThisContext), so every Node
// global is there. Before a cell runs, its top-level let, const and class declarations become
// var (a cell can be run again, and later cells see them), and a cell with a top-level await is
// wrapped in an async function, its declarations hoisted out, as Node's REPL does, and import()
// becomes a call of the kernel's own; all three parse the cell with the acorn parser Node
// bundles (hence --expose-internals). SIGINT interrupts a running cell (vm's breakOnSigint) or
// abandons the promise it awaits; between cells it does nothing. What the cell writes through
// process.stdout/stderr (console included) is kept per cell; what child processes write to fds 1
// and 2 is read from the pipes' other ends.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { createRequire, isBuiltin } = require('module');
const { pathToFileURL } = require('url');
const { Writable } = require('stream');
const { StringDecoder } = require('string_decoder');

const [CONTROL_FD, OUTPUT_LIMIT, STDOUT_FD, STDERR_FD] = process.argv.slice(-4).map(Number);
// `--typescript=DIR` before the numbers: the TypeScript module there transpiles each cell first.
const TYPESCRIPT_OPTION = process.argv.slice(2, -4).find((arg) => arg.startsWith('--typescript='));
const typescript = TYPESCRIPT_OPTION ? require(TYPESCRIPT_OPTION.slice('--typescript='.length)) : null;
const acorn = loadParser();
const kernelProcess = process; // a cell may declare its own `process`
const stringify = JSON.stringify;
const BINARY_TYPES = new Set(['image/png', 'image/jpeg']);
// What a cell's import() becomes: vm scripts may not import() without an experimental flag.
const IMPORT = 'globalThis[Symbol.for("cove.import")]';

function loadParser() {
  // Node's own copy, or Debian's node-acorn, which Debian's Node uses in its place.
  for (const name of ['internal/deps/acorn/acorn/dist/acorn', 'acorn']) {
    try {
      return require(name);
    } catch {
      // the next one
    }
  }
  return null;
}

// Output: per stream, the chunks of the running cell, up to OUTPUT_LIMIT bytes (the rest counted).
const output = { stdout: newStream(), stderr: newStream() };

function newStream() {
  return { chunks: [], kept: 0, dropped: 0, decoder: new StringDecoder('utf8') };
}

function add(name, data) {
  const stream = output[name];
  const kept = data.subarray(0, Math.max(OUTPUT_LIMIT - stream.kept, 0));
  stream.kept += kept.length;
  stream.dropped += data.length - kept.length;
  const text = stream.decoder.write(kept);
  if (text) stream.chunks.push(text);
}

function takeOutput() {
  for (const [fd, name] of [[STDOUT_FD, 'stdout'], [STDERR_FD, 'stderr']]) drain(fd, name);
  const taken = {};
  for (const [name, stream] of Object.entries(output)) {
    const tail = stream.decoder.end();
    taken[name] = tail ? [...stream.chunks, tail] : stream.chunks;
    taken[`${name}_truncated_bytes`] = stream.dropped;
    output[name] = newStream();
  }
  return taken;
}

function drain(fd, name) {
  // What child processes wrote and the event loop has not read yet (the pipe is not blocking).
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let count;
    try {
      count = fs.readSync(fd, buffer);
    } catch {
      return; // EAGAIN: empty for now
    }
    if (count === 0) return;
    add(name, Buffer.from(buffer.subarray(0, count)));
  }
}

function captureOutput() {
  // process.stdout and process.stderr (console's too) become streams into the cell's output; fds 1
  // and 2 are left alone (Node would make them non-blocking for the child processes that share them).
  for (const [fd, name] of [[STDOUT_FD, 'stdout'], [STDERR_FD, 'stderr']]) {
    const pipe = new net.Socket({ fd, readable: true, writable: false });
    pipe.on('data', (data) => add(name, data));
    pipe.on('error', () => {});
    pipe.unref();
    const stream = new Writable({
      write(chunk, encoding, done) {
        add(name, chunk);
        done();
      },
    });
    Object.assign(stream, { fd: name === 'stdout' ? 1 : 2, isTTY: false });
    Object.defineProperty(kernelProcess, name, { configurable: true, enumerable: true, value: stream });
  }
}

// Cells: rewritten so their declarations outlive them, and run.

function declaredNames(pattern, names) {
  if (!pattern) return names;
  if (pattern.type === 'Identifier') names.push(pattern.name);
  else if (pattern.type === 'ObjectPattern') {
    for (const property of pattern.properties) declaredNames(property.value || property.argument, names);
  } else if (pattern.type === 'ArrayPattern') pattern.elements.forEach((e) => declaredNames(e, names));
  else if (pattern.type === 'RestElement') declaredNames(pattern.argument, names);
  else if (pattern.type === 'AssignmentPattern') declaredNames(pattern.left, names);
  return names;
}

function importExpressions(node, found = []) {
  // Every import() of the cell, nested ones too.
  if (!node || typeof node.type !== 'string') return found;
  if (node.type === 'ImportExpression') found.push(node);
  for (const value of Object.values(node)) {
    if (Array.isArray(value)) value.forEach((item) => importExpressions(item, found));
    else if (typeof value === 'object') importExpressions(value, found);
  }
  return found;
}

function awaits(node) {
  // A top-level await: one outside every function of the cell.
  if (!node || typeof node.type !== 'string') return false;
  if (node.type === 'AwaitExpression' || (node.type === 'ForOfStatement' && node.await)) return true;
  if (node.type.includes('Function')) return false;
  return Object.values(node).some((value) =>
    Array.isArray(value) ? value.some(awaits) : typeof value === 'object' && awaits(value),
  );
}

function parse(code) {
  const options = { ecmaVersion: 'latest', allowAwaitOutsideFunction: true, allowHashBang: true };
  if (/^\s*\{/.test(code) && /\}\s*$/.test(code)) {
    try {
      return { program: acorn.parse(`(${code})`, options), source: `(${code})` }; // an object, as in the REPL
    } catch {
      // a block after all
    }
  }
  return { program: acorn.parse(code, options), source: code };
}

function prepare(code) {
  // The script to run, whether it is wrapped in an async function, and whether its value is the
  // cell's (its last statement is an expression). Edits keep the lines where they were, so stack
  // traces point at the cell's own lines.
  if (!acorn) return { source: code, wrapped: false, valued: true };
  let parsed;
  try {
    parsed = parse(code);
  } catch {
    return { source: code, wrapped: false, valued: true }; // V8 says what is wrong, and where
  }
  const { program, source } = parsed;
  const wrapped = program.body.some(awaits);
  const edits = [];
  const hoisted = [];
  for (const statement of program.body) {
    if (statement.type === 'VariableDeclaration' && wrapped) {
      statement.declarations.forEach((d) => declaredNames(d.id, hoisted));
      const end = statement.declarations.at(-1).end;
      edits.push([statement.start, statement.start + statement.kind.length, 'void (']);
      edits.push([end, end, ')']);
    } else if (statement.type === 'VariableDeclaration' && statement.kind !== 'var') {
      edits.push([statement.start, statement.start + statement.kind.length, 'var']);
    } else if (statement.type === 'ClassDeclaration') {
      const name = statement.id.name;
      if (wrapped) hoisted.push(name);
      edits.push([statement.start, statement.start, wrapped ? `${name} = ` : `var ${name} = `]);
      edits.push([statement.end, statement.end, ';']);
    } else if (statement.type === 'FunctionDeclaration' && wrapped) {
      hoisted.push(statement.id.name);
      edits.push([statement.start, statement.start, `this.${statement.id.name} = ${statement.id.name}; `]);
    }
  }
  const last = program.body.at(-1);
  const valued = last !== undefined && last.type === 'ExpressionStatement';
  if (wrapped && valued) {
    edits.push([last.expression.start, last.expression.start, 'return { value: (']);
    edits.push([last.expression.end, last.expression.end, ') }']);
  }
  for (const expression of importExpressions(program)) {
    edits.push([expression.start, expression.start + 'import'.length, IMPORT]); // last: after any insertion here
  }
  let rewritten = source;
  // From the end back; of two at one place, the later first, so it ends up after the other.
  const ordered = edits.map((edit, index) => [...edit, index]).sort((a, b) => b[0] - a[0] || b[3] - a[3]);
  for (const [start, end, text] of ordered) {
    rewritten = rewritten.slice(0, start) + text + rewritten.slice(end);
  }
  if (wrapped) {
    const declared = hoisted.length ? `var ${[...new Set(hoisted)].join(', ')}; ` : '';
    rewritten = `${declared}(async () => { ${rewritten}\n})`; // called by evaluate(), not a frame of the cell
  }
  return { source: rewritten, wrapped, valued };
}

let requireBase = null;
let cellRequire = null;

function requireFromHere() {
  // require() resolves from the working directory, as in Node's REPL.
  const base = path.join(kernelProcess.cwd(), '[cell]');
  if (base !== requireBase) [requireBase, cellRequire] = [base, createRequire(base)];
  return cellRequire;
}

const CELL_FUNCTION = Symbol.for('cove.cell');
const callCellFunction = new vm.Script('globalThis[Symbol.for("cove.cell")]()', { filename: __filename });

function interruptible(cellFunction) {
  // Call the wrapped cell as a script, so SIGINT breaks its first steps too (its frame: the kernel's).
  globalThis[CELL_FUNCTION] = cellFunction;
  try {
    return callCellFunction.runInThisContext({ breakOnSigint: true });
  } finally {
    delete globalThis[CELL_FUNCTION];
  }
}

function importFromHere(specifier) {
  // import() as from the working directory: a path or package resolved as require() would.
  let target = String(specifier);
  if (!isBuiltin(target) && !/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    try {
      target = pathToFileURL(requireFromHere().resolve(target)).href;
    } catch {
      // an ECMAScript-only package, say: as given
    }
  }
  return import(target);
}

let interruptWaiting = null;

function untilInterrupted(promise) {
  // The promise's outcome, or an error at SIGINT (the promise is left pending).
  return new Promise((resolve, reject) => {
    interruptWaiting = () =>
      reject(new Error('Script execution was interrupted by `SIGINT` while the cell awaited a promise'));
    promise.then(resolve, reject);
  }).finally(() => {
    interruptWaiting = null;
  });
}

function transpile(code) {
  // Types stripped, one cell at a time: no type checking, as in ts-node's transpile-only mode.
  const options = { target: typescript.ScriptTarget.ES2022, module: typescript.ModuleKind.CommonJS };
  return typescript.transpileModule(code, { compilerOptions: options }).outputText;
}

async function evaluate(code, filename) {
  // The cell's value, and whether it has one to show.
  const cell = prepare(typescript ? transpile(code) : code);
  const script = new vm.Script(cell.source, { filename });
  const value = script.runInThisContext({ breakOnSigint: true });
  if (!cell.wrapped) return { value, shown: cell.valued && value !== undefined };
  const outcome = await untilInterrupted(interruptible(value));
  return { value: outcome && outcome.value, shown: outcome !== undefined && outcome.value !== undefined };
}

// Results: mime bundles, as kernel.py makes them.

let displayed = [];

function encodedFormats(found) {
  const formats = {};
  for (const [mime, value] of Object.entries(found || {})) {
    if (mime === 'isMainResult') continue;
    if (BINARY_TYPES.has(mime) && value instanceof Uint8Array) formats[mime] = Buffer.from(value).toString('base64');
    else if (typeof value === 'string') formats[mime] = value;
    else if (mime.endsWith('json') && value !== null && typeof value === 'object') {
      try {
        formats[mime] = JSON.parse(stringify(value));
      } catch {
        // not JSON after all
      }
    }
  }
  return formats;
}

function bundle(value, main) {
  // text/plain (util.inspect) and what the value's `_repr_mimebundle_()` offers, as in IPython.
  let rich = {};
  if (value !== null && typeof value === 'object' && typeof value._repr_mimebundle_ === 'function') {
    try {
      rich = encodedFormats(value._repr_mimebundle_());
    } catch (error) {
      add('stderr', Buffer.from(`cove kernel: _repr_mimebundle_() failed: ${util.inspect(error)}\n`));
    }
  }
  return { ...rich, 'text/plain': rich['text/plain'] ?? util.inspect(value), isMainResult: main };
}

function display(...values) {
  for (const value of values) displayed.push(bundle(value, false));
}

function displayBundle(found) {
  const formats = encodedFormats(found);
  displayed.push({ ...formats, 'text/plain': formats['text/plain'] ?? '', isMainResult: false });
}

display.bundle = displayBundle;
display.html = (html) => displayBundle({ 'text/html': String(html) });
display.markdown = (text) => displayBundle({ 'text/markdown': String(text) });
display.svg = (svg) => displayBundle({ 'image/svg+xml': String(svg) });
display.json = (value) => displayBundle({ 'application/json': value });
display.png = (image) =>
  displayBundle({ 'image/png': typeof image === 'string' ? Buffer.from(image, 'base64') : image });

function bounded(results) {
  let total = 0;
  return results.map((result) => {
    let size = Buffer.byteLength(stringify(result));
    if (total + size > OUTPUT_LIMIT) {
      const note = `(a result of ${size} bytes was left out: results are at most ${OUTPUT_LIMIT} bytes a cell)`;
      result = { 'text/plain': note, isMainResult: result.isMainResult };
      size = note.length;
    }
    total += size;
    return result;
  });
}

// Errors: name, value and the stack of the cell's frames.

function describeError(thrown) {
  if (!util.types.isNativeError(thrown) && !(thrown instanceof Error)) {
    return { name: 'Uncaught', value: util.inspect(thrown), traceback: '' };
  }
  const lines = String(thrown.stack || `${thrown.name}: ${thrown.message}`).split('\n');
  const frame = (line) => /^\s+at /.test(line);
  const machinery = (line) => frame(line) && (line.includes(__filename) || line.includes('node:vm'));
  const lastCellFrame = lines.findLastIndex((line) => frame(line) && line.includes('<cell '));
  const end = lastCellFrame >= 0 ? lastCellFrame + 1 : lines.findIndex(machinery); // the kernel called the cell
  const kept = lines.slice(0, end >= 0 ? end : lines.length).filter((line) => !machinery(line));
  return { name: String(thrown.name), value: String(thrown.message), traceback: kept.join('\n') };
}

let executionCount = 0;

async function runCell(code) {
  executionCount += 1;
  displayed = [];
  globalThis.require = requireFromHere();
  const started = kernelProcess.hrtime.bigint();
  let main = null;
  let error = null;
  try {
    const { value, shown } = await evaluate(code, `<cell ${executionCount}>`);
    if (shown) main = bundle(value, true);
  } catch (thrown) {
    error = describeError(thrown);
  }
  const elapsed = Number(kernelProcess.hrtime.bigint() - started) / 1e9;
  let results = [...displayed, ...(main ? [main] : [])];
  try {
    results = bounded(results);
  } catch (failure) {
    results = [];
    error = error || describeError(failure);
  }
  return {
    execution_count: executionCount,
    execution_time: elapsed,
    results,
    ...takeOutput(),
    error,
  };
}

// The wire.

function serve() {
  const control = new net.Socket({ fd: CONTROL_FD, readable: true, writable: true });
  const cells = [];
  let received = Buffer.alloc(0);
  let busy = false;
  const next = async () => {
    if (busy || cells.length === 0) return;
    busy = true;
    control.write('{"started": true}\n');
    let answer;
    const cell = JSON.parse(cells.shift());
    const env = cell.env ?? {};
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    try {
      Object.assign(process.env, env); // for this cell only: restored below
      answer = stringify(await runCell(String(cell.code ?? '')));
    } catch (failure) {
      const error = { name: String(failure && failure.name), value: String(failure), traceback: '' };
      answer = stringify({ execution_count: executionCount, execution_time: 0, results: [], ...takeOutput(), error });
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    control.write(`${answer}\n`);
    busy = false;
    next();
  };
  control.on('data', (data) => {
    received = Buffer.concat([received, data]);
    for (let end = received.indexOf(10); end >= 0; end = received.indexOf(10)) {
      cells.push(received.subarray(0, end).toString());
      received = received.subarray(end + 1);
    }
    next();
  });
  control.on('end', () => kernelProcess.exit(0)); // the agent is gone
  control.on('error', () => kernelProcess.exit(0));
}

function main() {
  captureOutput();
  globalThis[Symbol.for('cove.import')] = importFromHere;
  globalThis.display = display;
  kernelProcess.on('SIGINT', () => interruptWaiting && interruptWaiting());
  const report = (what) => (thrown) => {
    const told = util.types.isNativeError(thrown) ? thrown.stack : util.inspect(thrown);
    add('stderr', Buffer.from(`${what}: ${told}\n`));
  };
  kernelProcess.on('uncaughtException', report('Uncaught exception'));
  kernelProcess.on('unhandledRejection', report('Unhandled promise rejection'));
  serve();
}

main();
