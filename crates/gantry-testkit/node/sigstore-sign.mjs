// A third-party signer for gantry's tests: sigstore-js signing against @sigstore/mock's Fulcio,
// Rekor and TSA, served on a loopback port. It writes real bundles (certificate with an embedded
// SCT, Rekor entry with SET, inclusion proof and checkpoint, RFC 3161 timestamp) and the trusted
// root that verifies them.
//
// node sigstore-sign.mjs --out DIR (--digest sha256:HEX | --blob FILE) [--identity URI]
//   [--issuer URL] [--claims JSON]
// --digest: a DSSE bundle over an in-toto statement whose subject is that digest, with cosign v3's
//   predicate type https://sigstore.dev/cosign/sign/v1 (how cosign signs an image).
// --blob: a message-signature bundle over the file.
// Writes DIR/bundle.json and DIR/trusted_root.json.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { startMockSigstore } from './mock-sigstore.mjs';
import { attest, sign } from 'sigstore';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    digest: { type: 'string' },
    blob: { type: 'string' },
    identity: { type: 'string', default: 'https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main' },
    issuer: { type: 'string', default: 'https://token.actions.githubusercontent.com' },
    claims: { type: 'string', default: '{}' },
  },
});
if (!values.out || (!values.digest === !values.blob)) {
  console.error('usage: sigstore-sign.mjs --out DIR (--digest sha256:HEX | --blob FILE)');
  process.exit(2);
}

const services = await startMockSigstore();
const base = services.base;
const token = services.token({ identity: values.identity, issuer: values.issuer, claims: JSON.parse(values.claims) });

const options = {
  fulcioURL: base,
  rekorURL: base,
  tsaServerURL: base,
  identityToken: token,
  tlogUpload: true,
};
let bundle;
if (values.digest) {
  const [algorithm, hex] = values.digest.split(':');
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'image', digest: { [algorithm]: hex } }],
    predicateType: 'https://sigstore.dev/cosign/sign/v1',
    predicate: {},
  };
  bundle = await attest(Buffer.from(JSON.stringify(statement)), 'application/vnd.in-toto+json', options);
} else {
  bundle = await sign(fs.readFileSync(values.blob), options);
}
services.close();

fs.mkdirSync(values.out, { recursive: true });
fs.writeFileSync(path.join(values.out, 'bundle.json'), JSON.stringify(bundle));
fs.writeFileSync(path.join(values.out, 'trusted_root.json'), JSON.stringify(services.trustedRoot));
