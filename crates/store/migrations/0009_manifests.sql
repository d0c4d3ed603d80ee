-- The signed C2PA manifest store of each stamp, kept with its public proof record past the
-- artifact's purge (it holds no personal data: docs/provenance.md). Beside `proofs`, not in it,
-- so the near-match scan over `proofs` stays as narrow as it was. `manifest_id` is the manifest's
-- label (`urn:c2pa:…`), what the Soft Binding Resolution API answers with; `manifest` is the
-- JUMBF store, base64 (one column type both databases share).
CREATE TABLE proof_manifests (
    proof_id TEXT PRIMARY KEY,
    manifest_id TEXT NOT NULL,
    manifest TEXT NOT NULL
);

CREATE UNIQUE INDEX proof_manifests_manifest_id ON proof_manifests (manifest_id);
