// docs/openapi.yaml is a valid OpenAPI 3.1 document (checked by @readme/openapi-parser:
// the 3.1 JSON Schema plus $ref resolution and semantic rules such as unique
// operationIds and declared path parameters), and its paths are exactly the routes the
// app serves (docs.test.ts compares the operations).
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { compileErrors, validate } from '@readme/openapi-parser';

const document = fileURLToPath(new URL('../../../docs/openapi.yaml', import.meta.url));

test('docs/openapi.yaml passes an OpenAPI 3.1 validator', async (t) => {
  const result = await validate(document, { validate: { errors: { colorize: false } } });
  t.true(result.valid, result.valid ? '' : compileErrors(result));
  t.deepEqual(result.warnings, []);
});
