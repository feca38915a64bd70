// @sigstore/mock's Fulcio, Rekor and TSA on one loopback port, for gantry's tests: the services
// a signer talks to, the trusted root that verifies what they issue, and identity tokens.
//
// Real Rekor stores a DSSE entry in its canonical form (hashes of the envelope and payload, the
// signatures with their verifiers), which is what verifiers parse; the mock logs what it is
// given, so DSSE entries are rewritten into that form on their way in.
//
// Sigstore's timestamp-authority takes RFC 3161 requests (DER, application/timestamp-query) as
// well as sigstore-js's JSON ones, and writes genTime in whole seconds (Go's encoding/asn1); the
// mock takes JSON only and writes milliseconds. Both are made to behave like the real service:
// DER requests are decoded here and handed to the mock TSA, and genTime is cut to the second.
// (sigstore-rust refuses fractional seconds: its GeneralizedTime is RFC 5280's.)

import crypto from 'node:crypto';
import http from 'node:http';

import mock from '@sigstore/mock';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export async function startMockSigstore() {
  const keyPair = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ctLog = await mock.initializeCTLog(keyPair());
  const ca = await mock.initializeCA(keyPair(), ctLog);
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const tlog = await mock.initializeTLog(base, keyPair());
  const tsa = await mock.initializeTSA(keyPair());
  const tstInfo = tsa.tstInfo.bind(tsa);
  tsa.tstInfo = (req) => {
    const info = tstInfo(req);
    info.genTime = new Date(Math.floor(info.genTime.getTime() / 1000) * 1000);
    if (req.nonceInteger) {
      info.nonce = req.nonceInteger; // as sent: an 8-byte nonce does not fit a JS number
    }
    return info;
  };
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
      const bytes = Buffer.concat(chunks);
      if (request.url.startsWith('/api/v1/timestamp') && bytes[0] === 0x30) {
        await rfc3161(bytes, response);
        return;
      }
      let body = bytes.toString();
      if (request.url.startsWith('/api/v1/log/entries')) {
        body = JSON.stringify(canonicalRekorEntry(JSON.parse(body)));
      }
      if (request.url.startsWith('/api/v2/signingCert')) {
        body = JSON.stringify(fulcioRequest(JSON.parse(body), request.headers.authorization));
      }
      const result = await handler.fn(body);
      response.writeHead(result.statusCode, { 'content-type': result.contentType ?? 'application/json' });
      response.end(result.response);
    });
  });

  // Real Fulcio takes the token as a bearer token too, and the CSR as base64 of its PEM (both as
  // sigstore-python sends them); the mock reads the token from the body and the CSR as PEM.
  function fulcioRequest(json, authorization) {
    if (!json.credentials && authorization?.startsWith('Bearer ')) {
      json.credentials = { oidcIdentityToken: authorization.slice('Bearer '.length) };
    }
    const csr = json.certificateSigningRequest;
    if (csr && !csr.startsWith('-----')) {
      json.certificateSigningRequest = Buffer.from(csr, 'base64').toString();
    }
    return json;
  }

  // An RFC 3161 TimeStampReq, answered by the mock TSA as a TimeStampResp.
  async function rfc3161(bytes, response) {
    try {
      const req = pkijs.TimeStampReq.fromBER(new Uint8Array(bytes).buffer);
      const reply = await tsa.timestamp({
        artifactHash: Buffer.from(req.messageImprint.hashedMessage.valueBlock.valueHexView),
        hashAlgorithmOID: req.messageImprint.hashAlgorithm.algorithmId,
        nonce: 0,
        nonceInteger: req.nonce ? new asn1js.Integer({ valueHex: req.nonce.valueBlock.valueHexView }) : undefined,
        policyOID: req.reqPolicy ?? '1.3.6.1.4.1.57264.2',
        certReq: req.certReq ?? false,
      });
      response.writeHead(201, { 'content-type': 'application/timestamp-reply' }).end(reply);
    } catch (error) {
      response.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
    }
  }

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
        signatures: parsed.signatures.map((signature, i) => ({ signature: signature.sig, verifier: canonicalPem(verifiers[i] ?? verifiers[0]) })),
      },
    };
  }

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

  const signingConfig = {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [{ url: base, majorApiVersion: 1, validFor: { start }, operator: 'sigstore.mock' }],
    oidcUrls: [],
    rekorTlogUrls: [{ url: base, majorApiVersion: 1, validFor: { start }, operator: 'sigstore.mock' }],
    tsaUrls: [{ url: `${base}/api/v1/timestamp`, majorApiVersion: 1, validFor: { start }, operator: 'sigstore.mock' }],
    rekorTlogConfig: { selector: 'ANY' },
    tsaConfig: { selector: 'ANY' },
  };
  return { base, trustedRoot, signingConfig, token, close: () => server.close() };
}

// Rekor re-encodes a verifier as Go's PEM encoder writes it (LF, 64-column lines, final newline),
// whatever line endings the signer sent; verifiers compare against that form.
function canonicalPem(base64Pem) {
  const text = Buffer.from(base64Pem, 'base64').toString();
  const match = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!match) {
    return base64Pem;
  }
  const body = match[2].replace(/\s+/g, '');
  const lines = body.match(/.{1,64}/g) ?? [];
  return Buffer.from(`-----BEGIN ${match[1]}-----\n${lines.join('\n')}\n-----END ${match[1]}-----\n`).toString('base64');
}

// An unsigned token with GitHub Actions claims: the mock Fulcio reads claims, never checks them.
function token({ identity, issuer, claims = {} }) {
  const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return [
    b64url({ alg: 'none', typ: 'JWT' }),
    b64url({ iss: issuer, sub: identity, aud: 'sigstore', iat: now, exp: now + 600, ...claims }),
    '',
  ].join('.');
}
