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
// --tsa: also an RFC 3161 timestamp from the mock TSA (sigstore-rust refuses its TSTInfo with a DER
//   error at the GeneralizedTime; not investigated yet, so off by default).
// Writes DIR/bundle.json and DIR/trusted_root.json.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';

import mock from '@sigstore/mock';
import { attest, sign } from 'sigstore';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    digest: { type: 'string' },
    blob: { type: 'string' },
    identity: { type: 'string', default: 'https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main' },
    issuer: { type: 'string', default: 'https://token.actions.githubusercontent.com' },
    claims: { type: 'string', default: '{}' },
    tsa: { type: 'boolean', default: false },
  },
});
if (!values.out || (!values.digest === !values.blob)) {
  console.error('usage: sigstore-sign.mjs --out DIR (--digest sha256:HEX | --blob FILE)');
  process.exit(2);
}

const keyPair = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ctLog = await mock.initializeCTLog(keyPair());
const ca = await mock.initializeCA(keyPair(), ctLog);
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const tlog = await mock.initializeTLog(base, keyPair());
const tsa = await mock.initializeTSA(keyPair());
const handlers = [mock.fulcioHandler(ca), mock.rekorHandler(tlog), mock.tsaHandler(tsa)];
server.on('request', (request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', async () => {
    const handler = handlers.find((h) => request.url.startsWith(h.path));
    if (!handler) {
      response.writeHead(404).end();
      return;
    }
    let body = Buffer.concat(chunks).toString();
    if (request.url.startsWith('/api/v1/log/entries')) {
      body = JSON.stringify(canonicalRekorEntry(JSON.parse(body)));
    }
    const result = await handler.fn(body);
    response.writeHead(result.statusCode, { 'content-type': result.contentType ?? 'application/json' });
    response.end(result.response);
  });
});

// Real Rekor stores a DSSE entry in its canonical form (hashes of the envelope and payload, the
// signatures with their verifiers), which is what verifiers parse; the mock logs what it is given.
function canonicalRekorEntry(entry) {
  if (entry.kind !== 'dsse' || !entry.spec?.proposedContent) {
    return entry;
  }
  const { envelope, verifiers } = entry.spec.proposedContent;
  const parsed = JSON.parse(envelope);
  const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(parsed.payload, 'base64')) },
      signatures: parsed.signatures.map((signature, i) => ({ signature: signature.sig, verifier: verifiers[i] ?? verifiers[0] })),
    },
  };
}

// An unsigned token with GitHub Actions claims: the mock Fulcio reads claims, never checks them.
const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const token = [
  b64url({ alg: 'none', typ: 'JWT' }),
  b64url({
    iss: values.issuer,
    sub: values.identity,
    aud: 'sigstore',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 600,
    ...JSON.parse(values.claims),
  }),
  '',
].join('.');

const options = {
  fulcioURL: base,
  rekorURL: base,
  tsaServerURL: values.tsa ? base : undefined,
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
server.close();

const der = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);
const start = new Date(Date.now() - 3600_000).toISOString();
const keyId = (publicKey) => crypto.createHash('sha256').update(publicKey).digest('base64');
const trustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [{
    baseUrl: base,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: tlog.publicKey.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: keyId(tlog.publicKey) },
  }],
  certificateAuthorities: [{
    subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
    uri: base,
    certChain: { certificates: [{ rawBytes: der(ca.rootCertificate).toString('base64') }] },
    validFor: { start },
  }],
  ctlogs: [{
    baseUrl: base,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: ctLog.publicKey.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: der(ctLog.logID).toString('base64') },
  }],
  timestampAuthorities: [{
    subject: { organization: 'sigstore.mock', commonName: 'tsa' },
    uri: base,
    certChain: { certificates: [der(tsa.intCertificate), der(tsa.rootCertificate)].map((c) => ({ rawBytes: c.toString('base64') })) },
    validFor: { start },
  }],
};
fs.mkdirSync(values.out, { recursive: true });
fs.writeFileSync(path.join(values.out, 'bundle.json'), JSON.stringify(bundle));
fs.writeFileSync(path.join(values.out, 'trusted_root.json'), JSON.stringify(trustedRoot));
