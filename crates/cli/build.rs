//! Link the `pixseal` binary with packed relative relocations (DT_RELR): its 1.7 MB table of
//! relative relocations, which the loader reads at every start, becomes a few KB, and with it
//! the resident size of every run (docs/benchmarks.md, video sanitize). ASLR stays; the binary
//! needs glibc 2.36 or later (Debian 12), as its libdav1d and libde265 already do.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
