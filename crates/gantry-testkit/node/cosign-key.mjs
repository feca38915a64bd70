// Writes a key pair in cosign's format, independently of gantry: a P-256 key (node's crypto) as
// PKCS#8, encrypted the way cosign's `generate-key-pair` does (go-securesystemslib's `encrypted`:
// scrypt N=32768 r=8 p=1 over the password with a 32-byte salt, NaCl secretbox from tweetnacl),
// in an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block; and the public key as PEM.
//
// node cosign-key.mjs --out DIR --password PASSWORD
// Writes DIR/cosign.key and DIR/cosign.pub.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import nacl from 'tweetnacl';

const { values } = parseArgs({ options: { out: { type: 'string' }, password: { type: 'string' } } });
if (!values.out || values.password === undefined) {
  console.error('usage: cosign-key.mjs --out DIR --password PASSWORD');
  process.exit(2);
}
const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
const salt = crypto.randomBytes(32);
const params = { N: 32768, r: 8, p: 1 };
const key = crypto.scryptSync(values.password, salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 });
const nonce = crypto.randomBytes(24);
const ciphertext = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key));
const encrypted = {
  kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
  cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
  ciphertext: Buffer.from(ciphertext).toString('base64'),
};
const body = Buffer.from(JSON.stringify(encrypted)).toString('base64').match(/.{1,64}/g).join('\n');
fs.mkdirSync(values.out, { recursive: true });
fs.writeFileSync(path.join(values.out, 'cosign.key'), `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`);
fs.writeFileSync(path.join(values.out, 'cosign.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
