// Checks GraphQL requests gantry sent, and the answers the GitHub stand-in gave, against GitHub's
// own GraphQL schema (@octokit/graphql-schema): each document must validate, its variables must
// coerce to the declared types, and executing it over the answer's data must give that data back
// without errors (so every field and enum value the stand-in answers exists in the schema).
// Input on stdin: [[request, answer], ...]. Prints "N checked" or the violations, exit 1.
import { readFileSync } from 'node:fs';
import { buildSchema, execute, parse, validate } from 'graphql';

const schemaText = readFileSync(
  new URL('./node_modules/@octokit/graphql-schema/schema.graphql', import.meta.url),
  'utf8',
);
// The published SDL defines two fields of EnterpriseOwnerInfo twice (15.26.1), which graphql-js's
// SDL check refuses; the schema is built without that check (the duplicates are identical).
const schema = buildSchema(schemaText, { assumeValidSDL: true });
const pairs = JSON.parse(readFileSync(0, 'utf8'));
// JSON with object keys sorted: the stand-in's answer and the schema's may order keys apart.
const canonical = (value) =>
  JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
const failures = [];
for (const [request, answer] of pairs) {
  let document;
  try {
    document = parse(request.query);
  } catch (error) {
    failures.push(`does not parse: ${error.message}`);
    continue;
  }
  const errors = validate(schema, document);
  if (errors.length > 0) {
    failures.push(...errors.map((e) => `request: ${e.message}`));
    continue;
  }
  const result = await execute({
    schema,
    document,
    rootValue: answer.data ?? {},
    variableValues: request.variables ?? {},
  });
  if (result.errors && !answer.errors) {
    failures.push(...result.errors.map((e) => `answer: ${e.message}`));
  } else if (!answer.errors && canonical(result.data) !== canonical(answer.data)) {
    failures.push(`answer: ${JSON.stringify(answer.data)} is not what the schema gives back: ${JSON.stringify(result.data)}`);
  }
}
if (failures.length > 0) {
  console.log(failures.join('\n'));
  process.exit(1);
}
console.log(`${pairs.length} checked`);
