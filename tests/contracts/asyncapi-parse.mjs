// Parses AsyncAPI documents (JSON or YAML files) with @asyncapi/parser, the
// AsyncAPI reference parser, as scripts/check-contracts does:
//
//   node tests/contracts/asyncapi-parse.mjs LABEL=FILE [LABEL=FILE ...]
//
// Prints every diagnostic (error, warning, info, hint) with its path in the
// document; exits 1 when any document has an error-severity diagnostic or
// does not parse into a document, 2 on bad arguments.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

const args = process.argv.slice(2);
if (args.length === 0) {
  console.error('usage: asyncapi-parse.mjs LABEL=FILE [LABEL=FILE ...]');
  process.exit(2);
}

const parser = new Parser();
let failed = false;
for (const arg of args) {
  const at = arg.indexOf('=');
  const [label, file] = at > 0 ? [arg.slice(0, at), arg.slice(at + 1)] : [arg, arg];
  const text = await readFile(file, 'utf8');
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const counts = { error: 0, warning: 0, info: 0, hint: 0 };
  for (const d of diagnostics) {
    const severity = SEVERITY[d.severity] ?? String(d.severity);
    counts[severity] = (counts[severity] ?? 0) + 1;
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    const line = d.range ? `:${d.range.start.line + 1}` : '';
    console.log(`  ${label}${line} ${severity} [${d.code}] at ${where}: ${d.message}`);
  }
  const ok = document !== undefined && counts.error === 0;
  const version = document ? document.version() : 'not parsed';
  console.log(
    `${ok ? 'PASS' : 'FAIL'} ${label}: AsyncAPI ${version}; ${counts.error} error(s), ${counts.warning} warning(s), ` +
      `${counts.info} info, ${counts.hint} hint(s)`,
  );
  failed ||= !ok;
}
process.exit(failed ? 1 : 0);
