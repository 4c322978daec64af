//! Generates `include/diskq.h` from the C ABI in `src/ffi/` with cbindgen.
//!
//! The header is written to `OUT_DIR` on every build and copied to
//! `include/diskq.h` only when the bytes differ, so an unchanged tree
//! stays unchanged. The test script fails when the committed header
//! differs from what this generates.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");

    let bindings = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => bindings,
        Err(e) => {
            // A syntax error in src/ is reported better by rustc itself.
            println!("cargo:warning=cbindgen could not generate diskq.h: {e}");
            return;
        }
    };
    let generated = out_dir.join("diskq.h");
    bindings.write_to_file(&generated);

    let committed = crate_dir.join("include").join("diskq.h");
    let new = std::fs::read(&generated).expect("cbindgen wrote the header");
    if std::fs::read(&committed).ok().as_deref() != Some(new.as_slice()) {
        std::fs::create_dir_all(committed.parent().expect("include/ has a parent"))
            .expect("create include/");
        std::fs::write(&committed, &new).expect("write include/diskq.h");
    }
}
