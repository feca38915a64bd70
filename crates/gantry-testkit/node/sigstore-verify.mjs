// A third-party verifier for gantry's bundles: sigstore-js (@sigstore/verify) against a trusted
// root file, offline.
//
// node sigstore-verify.mjs --bundle FILE --trusted-root FILE --identity URI --issuer URL
//   (--digest sha256:HEX | --blob FILE)
// --digest: the bundle must be a DSSE in-toto statement with that subject digest (as cosign v3
//   signs an image); @sigstore/verify checks the signature, the statement subject is checked here.
// Exits 0 when verified, 1 with the reason otherwise.

import fs from 'node:fs';
import { parseArgs } from 'node:util';

import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const { values } = parseArgs({
  options: {
    bundle: { type: 'string' },
    'trusted-root': { type: 'string' },
    identity: { type: 'string' },
    issuer: { type: 'string' },
    digest: { type: 'string' },
    blob: { type: 'string' },
  },
});
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(values.bundle, 'utf8')));
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(values['trusted-root'], 'utf8')));
  const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 1 });
  const artifact = values.blob ? fs.readFileSync(values.blob) : undefined;
  verifier.verify(toSignedEntity(bundle, artifact), {
    subjectAlternativeName: values.identity,
    extensions: { issuer: values.issuer },
  });
  if (values.digest) {
    const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString());
    const [algorithm, hex] = values.digest.split(':');
    if (!statement.subject.some((s) => s.digest[algorithm] === hex)) {
      throw new Error(`the statement is for ${JSON.stringify(statement.subject)}, not ${values.digest}`);
    }
  }
  console.log('verified');
} catch (error) {
  console.error(`not verified: ${error.message}`);
  process.exit(1);
}
