// The mock Sigstore services (mock-sigstore.mjs) kept running for a signer under test.
//
// node sigstore-services.mjs --out DIR [--identity URI] [--issuer URL] [--claims JSON]
// Writes DIR/trusted_root.json, DIR/signing_config.json (v0.2) and DIR/token (an identity token
// for the mock Fulcio), prints the services' base URL on one line, and serves until stdin closes.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { startMockSigstore } from './mock-sigstore.mjs';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    identity: { type: 'string', default: 'https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main' },
    issuer: { type: 'string', default: 'https://token.actions.githubusercontent.com' },
    claims: { type: 'string', default: '{}' },
  },
});
if (!values.out) {
  console.error('usage: sigstore-services.mjs --out DIR');
  process.exit(2);
}
const services = await startMockSigstore();
fs.mkdirSync(values.out, { recursive: true });
fs.writeFileSync(path.join(values.out, 'trusted_root.json'), JSON.stringify(services.trustedRoot));
fs.writeFileSync(path.join(values.out, 'signing_config.json'), JSON.stringify(services.signingConfig));
const token = services.token({ identity: values.identity, issuer: values.issuer, claims: JSON.parse(values.claims) });
fs.writeFileSync(path.join(values.out, 'token'), token);
console.log(services.base);
process.stdin.resume();
process.stdin.on('end', () => {
  services.close();
  process.exit(0);
});
