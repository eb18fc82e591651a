//! Builds the policy components from source and hands them to the host.
//!
//! `policy-wasm/` (the default policy, embedded in the binary) and
//! `policy-wasm/examples/lifetime-fraction/` (an example, used by the tests) are compiled for
//! `wasm32-unknown-unknown` by a nested `cargo build` with its own target directory, and each core
//! module is turned into a component by `wit-component`. The result imports nothing from WASI.
//!
//! Outputs, in `OUT_DIR`: `default-policy.wasm`, `lifetime-fraction.wasm`; the environment
//! variable `CHECKALLSSLCERTS_EXAMPLE_POLICY` (compile time) points at the second one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

/// (cargo package, library file stem, output name)
const POLICIES: &[(&str, &str, &str)] = &[
    ("checkallsslcerts-default-policy", "default_policy", "default-policy.wasm"),
    ("checkallsslcerts-lifetime-fraction-policy", "lifetime_fraction_policy", "lifetime-fraction.wasm"),
];

fn main() {
    if let Err(message) = build() {
        // A build script's panic shows its message; make it the whole story.
        panic!("\n\nbuilding the policy components failed:\n{message}\n");
    }
}

fn build() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir.parent().ok_or("host/ has no parent directory")?.to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);

    embed_conformance_vectors(&workspace, &out_dir)?;
    git_commit(&workspace);

    for watched in ["policy-wasm", "wit", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CHECKALLSSLCERTS_POLICY_TARGET_DIR");

    check_target_installed()?;

    // One target directory for every profile of the host (debug, release, clippy...), so the
    // guest is compiled once: `<cargo target dir>/policy-wasm`.
    let target_dir = match env::var_os("CHECKALLSSLCERTS_POLICY_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cargo_target_dir(&out_dir).join("policy-wasm"),
    };

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for (package, _, _) in POLICIES {
        cmd.args(["-p", package]);
    }
    // The outer cargo's settings are for the host, not for the guest.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_FEATURE_FAILPOINTS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo to build the policy components: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build --release --target {TARGET}` of the policy crates failed ({status}); see the errors above"
        ));
    }

    for (package, stem, output) in POLICIES {
        let core = target_dir.join(TARGET).join("release").join(format!("{stem}.wasm"));
        let bytes =
            std::fs::read(&core).map_err(|e| format!("{package}: cannot read {}: {e}", core.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&bytes)
            .and_then(|encoder| encoder.validate(true).encode())
            .map_err(|e| format!("{package}: cannot turn {} into a component: {e:#}", core.display()))?;
        let dest = out_dir.join(output);
        std::fs::write(&dest, component).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    }
    println!(
        "cargo:rustc-env=CHECKALLSSLCERTS_EXAMPLE_POLICY={}",
        out_dir.join("lifetime-fraction.wasm").display()
    );
    Ok(())
}

/// `CHECKALLSSLCERTS_GIT_COMMIT` for `--version`: the environment's (a build from a source
/// tarball, e.g. the Debian package built outside git), else `git rev-parse --short=12 HEAD`,
/// else "unknown".
fn git_commit(workspace: &Path) {
    println!("cargo:rerun-if-env-changed=CHECKALLSSLCERTS_GIT_COMMIT");
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        let path = workspace.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit =
        env::var("CHECKALLSSLCERTS_GIT_COMMIT").ok().filter(|c| !c.trim().is_empty()).or_else(|| {
            let out = Command::new("git")
                .current_dir(workspace)
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && text.bytes().all(|b| b.is_ascii_hexdigit()) && !text.is_empty())
                .then_some(text)
        });
    println!("cargo:rustc-env=CHECKALLSSLCERTS_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}

/// Writes `OUT_DIR/conformance_vectors.rs`: every `tests/conformance/**/*.json` as
/// `(relative path, contents)`, sorted, so the binary carries the built-in suites.
fn embed_conformance_vectors(workspace: &Path, out_dir: &Path) -> Result<(), String> {
    let root = workspace.join("tests").join("conformance");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect_json(&root, &mut files)?;
    files.sort();
    let mut code = String::from("/// Built-in conformance vectors: (path under tests/conformance/, JSON).\n");
    code.push_str("pub static VECTORS: &[(&str, &str)] = &[\n");
    for file in &files {
        let relative =
            file.strip_prefix(&root).map_err(|e| e.to_string())?.to_string_lossy().replace('\\', "/");
        code.push_str(&format!("    ({relative:?}, include_str!({:?})),\n", file.display().to_string()));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("conformance_vectors.rs"), code).map_err(|e| e.to_string())
}

fn collect_json(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect_json(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Fails with the fix when the wasm target's standard library is not installed.
fn check_target_installed() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run {rustc}: {e}"))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || libdir.is_empty() || !Path::new(&libdir).is_dir() {
        return Err(format!(
            "the Rust target `{TARGET}` is not installed, and the policy is built for it.\n\
             Install it once with:\n\n    rustup target add {TARGET}\n"
        ));
    }
    Ok(())
}

/// `<target>/<profile>/build/<pkg>-<hash>/out` → `<target>` (or `<target>/<triple>` when
/// cross-compiling, which is just as good a home).
fn cargo_target_dir(out_dir: &Path) -> PathBuf {
    out_dir.ancestors().nth(4).map(Path::to_path_buf).unwrap_or_else(|| out_dir.join("policy-target"))
}
