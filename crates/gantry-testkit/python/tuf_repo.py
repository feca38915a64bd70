"""A TUF repository built and served by python-tuf (the reference implementation), for gantry's
TUF client to be tested against someone else's metadata.

    python3 tuf_repo.py --out DIR [--expires-days N] TARGET...

Writes DIR/root.json (the root to trust first), consistent-snapshot metadata (1.root.json,
timestamp.json, 1.snapshot.json, 1.targets.json) and each target as targets/<sha256>.<name>, then
serves DIR on 127.0.0.1 and prints its URL as the first line of stdout. Runs until killed.
"""

import argparse
import functools
import hashlib
import http.server
import os
import shutil
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "timestamp", "snapshot", "targets")


def build(out, targets, expires_days):
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=expires_days)
    signers = {role: CryptoSigner.generate_ecdsa() for role in ROLES}
    root = Root(expires=expires, consistent_snapshot=True)
    for role, signer in signers.items():
        root.add_key(signer.public_key, role)

    os.makedirs(os.path.join(out, "targets"), exist_ok=True)
    listed = Targets(expires=expires)
    for path in targets:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        listed.targets[name] = TargetFile.from_data(name, data, ["sha256"])
        digest = hashlib.sha256(data).hexdigest()
        shutil.copyfile(path, os.path.join(out, "targets", f"{digest}.{name}"))

    snapshot = Snapshot(expires=expires)
    snapshot.meta["targets.json"] = MetaFile(version=listed.version)
    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(version=snapshot.version)

    serializer = JSONSerializer(compact=False)
    for role, signed, name in (
        ("root", root, f"{root.version}.root.json"),
        ("targets", listed, f"{listed.version}.targets.json"),
        ("snapshot", snapshot, f"{snapshot.version}.snapshot.json"),
        ("timestamp", timestamp, "timestamp.json"),
    ):
        metadata = Metadata(signed)
        metadata.sign(signers[role])
        metadata.to_file(os.path.join(out, name), serializer)
    shutil.copyfile(os.path.join(out, "1.root.json"), os.path.join(out, "root.json"))


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s\n" % (format % args))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--expires-days", type=int, default=7)
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    build(args.out, args.targets, args.expires_days)
    handler = functools.partial(Quiet, directory=args.out)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
